"""Codex CLI rollouts (`~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl`), mapped onto stream-json.

Each line is a `RolloutLine` (`{"timestamp", "type", "payload"}`, openai/codex
`codex-rs/protocol`): `session_meta` (id, cwd, model provider, base instructions), `turn_context`
(the model and cwd of a turn), `response_item` (a `ResponseItem`: a message, reasoning, a
function / custom tool / local shell / web search call or its output), `event_msg` (an `EventMsg`:
token counts, turn start and end, and UI copies of the response items) and `compacted`.

    report = import_file("~/.codex/sessions/2026/05/11/rollout-2026-05-11T11-26-55-<id>.jsonl")

How they become messages:
- One model response is the run of reasoning, assistant text and tool calls between two inputs
  (a tool output, a user message) or up to the `token_count` event the CLI writes after each
  response: it becomes one assistant message (thinking, text and tool_use blocks) whose usage is
  that event's `last_token_usage`, converted to Anthropic field names (OpenAI's input tokens
  include the cached ones). The session's totals are the last `total_token_usage`.
- A tool output becomes a user message with a tool_result block for its `call_id`. A web search
  runs on the server and the rollout holds no output: its result is its status.
- User messages the CLI writes itself (AGENTS.md, `<environment_context>`), developer messages
  and the base instructions are system messages; the UI copies in `event_msg` are not stored.
- A turn that ends with `task_complete` completed with its last agent message; one still open
  at the end of the file is in progress.
Every payload keeps its rollout line under `codex`. Keys are line numbers: a rollout only grows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from collection.importers.base import Entry, Head, Importer, SessionFeed
from collection.importers.reading import Numbered, read_json_lines
from collection.lifecycle import Outcome
from collection.models import TaskStatus

LINE_TYPES = {"session_meta", "response_item", "event_msg", "turn_context", "compacted"}
# The first line is session_meta, whose base instructions can outgrow the sniffed head.
_FIRST_LINE = re.compile(r'^\s*\{\s*"timestamp"\s*:\s*"[^"]*"\s*,\s*"type"\s*:\s*"session_meta"')
# User messages the CLI writes into the conversation itself (codex-rs: `is_session_prefix`).
CONTEXT_PREFIXES = ("<environment_context>", "<user_instructions>", "# AGENTS.md instructions")
_FILE_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
CALLS = {"function_call", "custom_tool_call", "local_shell_call", "web_search_call"}
OUTPUTS = {"function_call_output", "custom_tool_call_output"}


class CodexImporter(Importer):
    name = "codex"
    label = "Codex CLI rollout"

    @classmethod
    def recognises(cls, head: Head) -> bool:
        if _FIRST_LINE.match(head.text):
            return True
        return any(
            r.get("type") in LINE_TYPES and isinstance(r.get("payload"), dict) for r in head.records
        )

    def read(self, path: Path) -> Iterator[SessionFeed]:
        # The file name ends with the session id: a rollout whose first line is lost or cut
        # still maps to its session.
        found = _FILE_ID.search(path.stem)
        fallback = found.group(0) if found else path.stem
        feed = SessionFeed(importer=self.name, file=path, fallback_id=fallback)
        feed.entries = _Mapper(feed).entries(read_json_lines(path, feed.problems.add))
        yield feed


class _Mapper:
    def __init__(self, feed: SessionFeed) -> None:
        self.feed = feed
        self.model = ""
        self.response: list[tuple[int, dict[str, Any]]] = []  # the response being read
        self.total: dict[str, Any] | None = None  # the last total_token_usage seen
        self.turn_open = False
        self.ended: Outcome | None = None
        self.types: dict[str, int] = {}

    def entries(self, lines: Iterator[Numbered]) -> Iterator[Entry]:
        for line, record in lines:
            kind = str(record.get("type"))
            payload = record.get("payload")
            payload = payload if isinstance(payload, dict) else {}
            name = f"{kind}/{payload['type']}" if "type" in payload else kind
            self.types[name] = self.types.get(name, 0) + 1
            yield from self._line(line, record, kind, payload)
        yield from self._flush()
        self._finish()

    def _line(
        self, line: int, record: dict[str, Any], kind: str, payload: dict[str, Any]
    ) -> Iterator[Entry]:
        item = payload.get("type")
        if kind == "response_item" and (
            item in CALLS or item == "reasoning" or _role(payload) == "assistant"
        ):
            self.response.append((line, record))
            return
        if kind == "event_msg" and item == "token_count":
            # Written after each response; without news (no info yet, a repeat) it ends nothing.
            usage = self._usage(_dict(payload.get("info")))
            if usage is not None:
                yield from self._flush(usage)
            return
        yield from self._flush()
        if kind == "session_meta":
            yield self._session_meta(line, record, payload)
        elif kind == "turn_context":
            self.model = str(payload.get("model") or self.model)
            self.feed.metadata.setdefault("cwd", payload.get("cwd"))
        elif kind == "response_item":
            yield from self._input(line, record, payload)
        elif kind == "compacted":
            yield _system(line, record, "codex_compacted", str(payload.get("message") or ""))
        elif kind == "event_msg":
            yield from self._event(line, record, payload)

    # --- model responses ---------------------------------------------------------------

    def _flush(self, usage: dict[str, int] | None = None) -> Iterator[Entry]:
        """The response read so far as one assistant message, with its usage when known."""
        if not self.response:
            return
        first, _ = self.response[0]
        blocks = [b for n, r in self.response for b in _blocks(_dict(r.get("payload")), n)]
        uuid = f"line-{first}"
        message: dict[str, Any] = {
            "id": uuid,
            "role": "assistant",
            "model": self.model,
            "content": blocks,
        }
        if usage is not None:
            message["usage"] = usage
        items, self.response = self.response, []
        lines = [r for _, r in items]
        payload: dict[str, Any] = {
            "type": "assistant",
            "message": message,
            "uuid": uuid,
            "timestamp": lines[0].get("timestamp"),
            "codex": lines,
        }
        yield Entry(payload=payload, uuid=uuid, line=first)
        yield from _server_results(items)

    def _usage(self, info: dict[str, Any]) -> dict[str, int] | None:
        """This response's usage; None when the event repeats the previous total."""
        total = _dict(info.get("total_token_usage"))
        if not total or total == self.total:
            return None
        self.total = total
        self.feed.reported_usage = _anthropic(total)
        return _anthropic(_dict(info.get("last_token_usage")))

    # --- inputs --------------------------------------------------------------------------

    def _session_meta(self, line: int, record: dict[str, Any], meta: dict[str, Any]) -> Entry:
        if not self.feed.session_id and meta.get("id"):
            self.feed.session_id = str(meta["id"])
            self.feed.metadata |= {
                "cwd": meta.get("cwd"),
                "codex_cli_version": meta.get("cli_version"),
                "originator": meta.get("originator"),
                "model_provider": meta.get("model_provider"),
                "git": meta.get("git"),
            }
        instructions = _dict(meta.get("base_instructions")).get("text") or meta.get("instructions")
        # The instructions are the message's content: the kept line need not repeat them.
        kept = meta.copy()
        kept.pop("base_instructions", None)
        kept.pop("instructions", None)
        return _system(line, record | {"payload": kept}, "system_prompt", str(instructions or ""))

    def _input(self, line: int, record: dict[str, Any], payload: dict[str, Any]) -> Iterator[Entry]:
        item = payload.get("type")
        uuid = f"line-{line}"
        if item in OUTPUTS:
            block = _tool_result(payload)
            message = {"role": "user", "content": [block]}
            yield Entry(payload=_user(record, message, uuid), uuid=uuid, line=line)
        elif item == "message" and _role(payload) == "user":
            text = _text(payload.get("content"))
            if text.lstrip().startswith(CONTEXT_PREFIXES):
                yield _system(line, record, "codex_context", text)
            else:
                message = {"role": "user", "content": text}
                yield Entry(payload=_user(record, message, uuid), uuid=uuid, line=line)
        elif item == "message":  # developer and system messages
            yield _system(line, record, f"codex_{_role(payload)}", _text(payload.get("content")))

    def _event(self, line: int, record: dict[str, Any], payload: dict[str, Any]) -> Iterator[Entry]:
        event = payload.get("type")
        if event in ("task_started", "turn_started"):  # the wire name, and its alias
            self.turn_open, self.ended = True, None
        elif event in ("task_complete", "turn_complete"):
            self.turn_open = False
            text = payload.get("last_agent_message")
            self.ended = Outcome(TaskStatus.COMPLETED, text=text if isinstance(text, str) else None)
        elif event == "turn_aborted":
            self.turn_open = False
            reason = str(payload.get("reason") or "aborted")
            self.ended = Outcome(TaskStatus.CANCELLED, error=f"turn {reason}", partial=True)
        elif event in ("error", "stream_error"):
            yield _system(line, record, f"codex_{event}", str(payload.get("message") or ""))

    def _finish(self) -> None:
        self.feed.metadata["line_types"] = self.types
        if self.turn_open:
            error = "the last turn has no task_complete: still running or cut off"
            self.feed.outcome = Outcome(TaskStatus.IN_PROGRESS, error=error, partial=True)
        else:
            self.feed.outcome = self.ended  # None (no turn events) leaves it to the writer


def _server_results(items: list[tuple[int, dict[str, Any]]]) -> Iterator[Entry]:
    """Web searches run on the server: the rollout has no output item for them."""
    for line, record in items:
        payload = _dict(record.get("payload"))
        if payload.get("type") != "web_search_call":
            continue
        block = {
            "type": "tool_result",
            "tool_use_id": _call_id(payload, line),
            "content": str(payload.get("status") or ""),
        }
        uuid = f"line-{line}-result"
        message = {"role": "user", "content": [block]}
        payload = {"type": "user", "message": message, "uuid": uuid}
        yield Entry(payload=payload | {"timestamp": record.get("timestamp")}, uuid=uuid, line=line)


# --- blocks --------------------------------------------------------------------------------


def _blocks(payload: dict[str, Any], line: int) -> list[dict[str, Any]]:
    item = payload.get("type")
    if item == "reasoning":
        thought = _reasoning(payload)
        return [{"type": "thinking", "thinking": thought}] if thought else []
    if item == "message":
        text = _text(payload.get("content"))
        return [{"type": "text", "text": text}] if text else []
    return [{"type": "tool_use", "id": _call_id(payload, line), **_call(payload)}]


def _call(payload: dict[str, Any]) -> dict[str, Any]:
    item = payload.get("type")
    if item == "function_call":
        return {"name": str(payload.get("name") or ""), "input": _arguments(payload)}
    if item == "custom_tool_call":  # free-form input (apply_patch's patch text)
        return {"name": str(payload.get("name") or ""), "input": {"input": payload.get("input")}}
    if item == "local_shell_call":
        return {"name": "local_shell", "input": _dict(payload.get("action"))}
    return {"name": "web_search", "input": _dict(payload.get("action"))}


def _call_id(payload: dict[str, Any], line: int) -> str:
    """Web search calls are written without an id: their line stands in for one."""
    return str(payload.get("call_id") or payload.get("id") or f"line-{line}")


def _arguments(payload: dict[str, Any]) -> dict[str, Any]:
    """The Responses API sends arguments as a JSON string; anything else is kept as it is."""
    raw = payload.get("arguments")
    try:
        parsed = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"arguments": raw}


def _tool_result(payload: dict[str, Any]) -> dict[str, Any]:
    output = payload.get("output")
    is_error = False
    if isinstance(output, dict):  # older rollouts: {"content": ..., "success": false}
        is_error = output.get("success") is False
        output = output.get("content")
    if isinstance(output, list):  # content items (MCP results): text parts, images dropped
        output = _text(output)
    return {
        "type": "tool_result",
        "tool_use_id": str(payload.get("call_id") or ""),
        "content": "" if output is None else str(output),
        "is_error": is_error,
    }


def _reasoning(payload: dict[str, Any]) -> str:
    """Readable reasoning: the summary, and the raw text when the provider sends it."""
    parts = [_dict(p).get("text") for p in payload.get("summary") or []]
    parts += [_dict(p).get("text") for p in payload.get("content") or []]
    return "\n\n".join(str(p) for p in parts if p).strip()


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    texts = [_dict(b).get("text") for b in content]
    return "\n".join(str(t) for t in texts if isinstance(t, str))


def _anthropic(usage: dict[str, Any]) -> dict[str, int]:
    """OpenAI counts cached tokens inside the input tokens; ours counts them apart."""
    prompt, cached = _int(usage.get("input_tokens")), _int(usage.get("cached_input_tokens"))
    return {
        "input_tokens": max(prompt - cached, 0),
        "output_tokens": _int(usage.get("output_tokens")),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


def _system(line: int, record: dict[str, Any], subtype: str, content: str) -> Entry:
    uuid = f"line-{line}"
    payload = {
        "type": "system",
        "subtype": subtype,
        "content": content,
        "uuid": uuid,
        "timestamp": record.get("timestamp"),
        "codex": record,
    }
    return Entry(payload=payload, uuid=uuid, line=line)


def _user(record: dict[str, Any], message: dict[str, Any], uuid: str) -> dict[str, Any]:
    return {
        "type": "user",
        "message": message,
        "uuid": uuid,
        "timestamp": record.get("timestamp"),
        "codex": record,
    }


def _role(payload: dict[str, Any]) -> str:
    return str(payload.get("role") or "")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
