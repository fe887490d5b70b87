"""Joining the lines Claude Code writes for one model response into one message.

Claude Code writes a response as several lines sharing `message.id`, one content block each,
each repeating the usage so far. Tool results (and hook progress) can land between those lines,
so lines that arrive while a response is open are held and released after it: a tool result is
then always stored after the tool call it answers.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import orjson

from collection.importers.base import ContentKeys
from collection.importers.reading import Numbered

# Held lines before an open response is released anyway (keeps memory bounded).
MAX_HELD = 1000


def response_id(record: dict[str, Any]) -> str | None:
    if record.get("type") != "assistant":
        return None
    message = record.get("message")
    rid = message.get("id") if isinstance(message, dict) else None
    return rid if isinstance(rid, str) and rid else None


class ResponseMerger:
    """Feed it numbered records in file order; it gives them back with responses merged."""

    def __init__(self) -> None:
        self._open: list[Numbered] = []
        self._held: list[Numbered] = []

    def push(self, item: Numbered) -> list[Numbered]:
        rid = response_id(item.record)
        if rid is not None:
            if self._open and response_id(self._open[0].record) == rid:
                self._open.append(item)
                return []
            released = self.close()
            self._open = [item]
            return released
        if not self._open:
            return [item]
        self._held.append(item)
        return self.close() if len(self._held) >= MAX_HELD else []

    def state(self) -> dict[str, Any]:
        """What it holds, for a read resumed later (`restore`): the open response's lines and
        the lines held behind it, not yet released."""
        return {"open": _plain(self._open), "held": _plain(self._held)}

    @classmethod
    def restore(cls, state: dict[str, Any] | None) -> ResponseMerger:
        merger = cls()
        if state:
            merger._open = [Numbered(line, record) for line, record in state["open"]]
            merger._held = [Numbered(line, record) for line, record in state["held"]]
        return merger

    def close(self) -> list[Numbered]:
        """Release the open response (merged) and the lines held behind it."""
        if not self._open:
            return []
        merged = Numbered(self._open[0].line, merge_response([i.record for i in self._open]))
        released = [merged, *self._held]
        self._open, self._held = [], []
        return released


def merge_response(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """One record for a response: the first line's envelope, every line's blocks, the last
    line's usage (the most complete), and the other lines' ids under `merged_lines`."""
    if len(lines) == 1:
        return lines[0]
    first, last = lines[0], lines[-1]
    message = dict(first["message"])
    message["content"] = [block for line in lines for block in _blocks(line["message"])]
    message["usage"] = last["message"].get("usage") or message.get("usage")
    stops = [line["message"].get("stop_reason") for line in lines]
    message["stop_reason"] = next((s for s in reversed(stops) if s), None)
    merged = dict(first)
    merged["message"] = message
    merged["merged_lines"] = [
        {key: line.get(key) for key in ("uuid", "parentUuid", "timestamp")} for line in lines[1:]
    ]
    return merged


def _plain(items: list[Numbered]) -> list[list[Any]]:
    # A copy that later changes to the records (a sub-agent's parent id) cannot reach.
    plain = [[item.line, item.record] for item in items]
    try:
        copied: list[list[Any]] = orjson.loads(orjson.dumps(plain))
    except (TypeError, orjson.JSONEncodeError):
        copied = json.loads(json.dumps(plain, default=str))
    return copied


def _blocks(message: dict[str, Any]) -> list[Any]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(content) if isinstance(content, list) else []


class MessageKeys:
    """Message keys shared by the Claude Code and stream-json importers, so the two agree.

    A response is keyed by its message id, not by the uuid of whichever of its lines came first:
    a re-import that reads more (or fewer) of its lines finds the same message. Other lines are
    keyed by their uuid, else by their content.
    """

    def __init__(self) -> None:
        self.responses: Counter[str] = Counter()
        self._content = ContentKeys()

    def state(self) -> dict[str, Any]:
        return {"responses": dict(self.responses), "content": self._content.state()}

    @classmethod
    def restore(cls, state: dict[str, Any] | None) -> MessageKeys:
        keys = cls()
        if state:
            keys.responses.update(state["responses"])
            keys._content = ContentKeys.restore(state["content"])
        return keys

    def key(self, record: dict[str, Any]) -> str:
        rid = response_id(record)
        if rid is not None:
            seen = self.responses[rid]
            self.responses[rid] += 1
            return rid if not seen else f"{rid}#{seen + 1}"
        uuid = record.get("uuid")
        return uuid if isinstance(uuid, str) and uuid else self._content.key(record)
