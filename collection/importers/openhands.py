"""OpenHands (V0) trajectories: a JSON list of action and observation events.

An agent action made through a tool call becomes an assistant message holding a tool_use block
(its thought as text and as the action's reasoning); the observation caused by it becomes a
user message with the tool_result (its `extras` as structured output). Messages from the user
or agent stay messages; other events are kept as system messages. Every payload keeps its
event verbatim under `openhands`. A session whose last agent state is `awaiting_user_input` ended
its turn (the agent answered and handed back to the user): it is complete, its last agent
message the outcome. Token usage comes from each LLM response once, converted to
Anthropic field names. A trajectory has no session id: the sha256 of the file is its identity.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collection.importers.base import Entry, Head, Importer, SessionFeed, TranscriptError
from collection.importers.reading import read_json_document
from collection.lifecycle import Outcome
from collection.models import TaskStatus

_SOURCE = re.compile(r'"source"\s*:\s*"(user|agent|environment)"')
_EVENT = re.compile(r'"(action|observation)"\s*:')


class OpenHandsImporter(Importer):
    name = "openhands"
    label = "OpenHands trajectory"

    @classmethod
    def recognises(cls, head: Head) -> bool:
        text = head.text.lstrip()
        return text.startswith("[") and bool(_SOURCE.search(text) and _EVENT.search(text))

    def read(self, path: Path) -> Iterator[SessionFeed]:
        events, digest = read_json_document(path)
        if not isinstance(events, list):
            raise TranscriptError(path, 1, "not a list of events: not an OpenHands trajectory")
        feed = SessionFeed(importer=self.name, file=path, fallback_id=f"sha256:{digest[:40]}")
        feed.entries = _Mapper(feed).entries(events)
        yield feed


class _Mapper:
    def __init__(self, feed: SessionFeed) -> None:
        self.feed = feed
        self.finished: str | None = None
        self.state = ""
        self.last_reply = ""  # the agent's last message, the outcome when it awaits the user

    def entries(self, events: list[Any]) -> Iterator[Entry]:
        for index, event in enumerate(events):
            if not isinstance(event, dict):
                problem = f"event {index} is not an object; skipped"
                self.feed.problems.add(TranscriptError(self.feed.file, None, problem))
                continue
            uuid = f"event-{event.get('id', index)}"
            payload, extra = self._payload(event)
            payload |= {"uuid": uuid, "timestamp": _utc(event.get("timestamp")), "openhands": event}
            yield Entry(payload=payload, uuid=uuid, **extra)
        self.feed.outcome = self._outcome()

    def _payload(self, event: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        meta = event.get("tool_call_metadata")
        meta = meta if isinstance(meta, dict) else {}
        action, observation = event.get("action"), event.get("observation")
        if action == "finish":
            self.finished = _thought(event) or str(event.get("message") or "")
        if observation == "agent_state_changed":
            self.state = str(_dict(event.get("extras")).get("agent_state") or "")
        if action and meta.get("tool_call_id"):
            return self._tool_use(event, meta), {"reasoning": _thought(event)}
        if observation and meta.get("tool_call_id"):
            return self._tool_result(event, meta), {"structured_result": event.get("extras")}
        if action == "message":
            payload = _message(event)
            if payload["type"] == "assistant":
                self.last_reply = payload["message"]["content"][0]["text"]
            return payload, {}
        kind = f"action_{action}" if action else f"observation_{observation}"
        return {"type": "system", "subtype": f"openhands_{kind}"}, {}

    def _tool_use(self, event: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
        response = _dict(meta.get("model_response"))
        call_id = str(meta["tool_call_id"])
        thought = _thought(event)
        blocks: list[dict[str, Any]] = [{"type": "text", "text": thought}] if thought else []
        name = str(meta.get("function_name") or event.get("action"))
        blocks.append(
            {
                "type": "tool_use",
                "id": call_id,
                "name": name,
                "input": _arguments(response, call_id, event),
            }
        )
        message = {
            "id": str(response.get("id") or f"event-{event.get('id')}"),
            "role": "assistant",
            "model": str(response.get("model") or ""),
            "content": blocks,
            "usage": _usage(_dict(response.get("usage"))),
        }
        return {"type": "assistant", "message": message}

    def _tool_result(self, event: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
        block = {
            "type": "tool_result",
            "tool_use_id": str(meta["tool_call_id"]),
            "content": str(event.get("content") or event.get("message") or ""),
            "is_error": event.get("observation") == "error",
        }
        return {"type": "user", "message": {"role": "user", "content": [block]}}

    def _outcome(self) -> Outcome:
        if self.state == "error":
            return Outcome(
                TaskStatus.FAILED, success=False, error="agent state: error", text=self.finished
            )
        if self.finished is not None or self.state == "finished":
            return Outcome(TaskStatus.COMPLETED, text=self.finished)
        if self.state == "awaiting_user_input":
            return Outcome(TaskStatus.COMPLETED, text=self.last_reply or None)
        return Outcome(
            TaskStatus.IN_PROGRESS, error="trajectory ends before a finish", partial=True
        )


def _message(event: dict[str, Any]) -> dict[str, Any]:
    text = str(_dict(event.get("args")).get("content") or event.get("message") or "")
    role = "user" if event.get("source") == "user" else "assistant"
    message: dict[str, Any] = {"role": role, "content": text}
    if role == "assistant":
        message = {
            "id": f"event-{event.get('id')}",
            **message,
            "content": [{"type": "text", "text": text}],
        }
    return {"type": role, "message": message}


def _arguments(response: dict[str, Any], call_id: str, event: dict[str, Any]) -> dict[str, Any]:
    """The tool call's arguments as the model sent them; the event's args when not found."""
    for choice in response.get("choices") or []:
        for call in _dict(_dict(choice).get("message")).get("tool_calls") or []:
            if _dict(call).get("id") == call_id:
                raw = _dict(call.get("function")).get("arguments")
                try:
                    parsed = json.loads(raw) if isinstance(raw, str) else raw
                except ValueError:
                    parsed = None
                if isinstance(parsed, dict):
                    return parsed
    return {k: v for k, v in _dict(event.get("args")).items() if k != "thought"}


def _usage(raw: dict[str, Any]) -> dict[str, int]:
    """OpenAI-style usage (prompt tokens include cached ones) in Anthropic field names."""
    prompt, completion = _int(raw.get("prompt_tokens")), _int(raw.get("completion_tokens"))
    cached = _int(_dict(raw.get("prompt_tokens_details")).get("cached_tokens"))
    read = _int(raw.get("cache_read_input_tokens")) or cached
    written = _int(raw.get("cache_creation_input_tokens"))
    return {
        "input_tokens": max(prompt - read - written, 0),
        "output_tokens": completion,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": read,
    }


def _thought(event: dict[str, Any]) -> str:
    args = _dict(event.get("args"))
    return str(args.get("thought") or args.get("final_thought") or "").strip()


def _utc(value: Any) -> Any:
    """OpenHands writes naive timestamps: they are read as UTC."""
    if not isinstance(value, str):
        return value
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
