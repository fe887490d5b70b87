"""`claude -p --output-format stream-json` logs, and SDK messages written as JSON lines.

These lines are the payloads `TrajectoryRecorder` takes, so they are stored as they are, with
two exceptions that make them agree with the transcript importer: the lines of one model
response (one `message.id`, a content block each) are merged into one message, as `merging`
does for Claude Code transcripts; and a result line's `modelUsage` (every model the run used,
sub-agents and helper calls included, which is what `total_cost_usd` covers) becomes its
`model_usage` and its token totals, the CLI's main-model `usage` kept as `main_model_usage`.
Sub-agent sessions (lines carrying a `parent_tool_use_id`) are listed in `metadata["subagents"]`.
A log may hold several runs: each `system/init` line after the first starts another session.

    report = import_file("run.ndjson", importer="stream_json")
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from collection.importers.base import Entry, Head, Importer, SessionFeed, TranscriptError
from collection.importers.merging import MessageKeys, ResponseMerger
from collection.importers.reading import Numbered, Peekable, read_json_lines

TYPES = {"system", "assistant", "user", "result", "stream_event"}
# modelUsage's camelCase counts, by the names usage (and the execution) uses.
MODEL_USAGE_FIELDS = {
    "inputTokens": "input_tokens",
    "outputTokens": "output_tokens",
    "cacheCreationInputTokens": "cache_creation_input_tokens",
    "cacheReadInputTokens": "cache_read_input_tokens",
}


class StreamJsonImporter(Importer):
    name = "stream_json"
    label = "stream-json log"

    @classmethod
    def recognises(cls, head: Head) -> bool:
        records = head.records
        if not records or any("sessionId" in r for r in records):
            return False  # Claude Code transcripts use sessionId
        return any(r.get("type") in TYPES and ("session_id" in r or _is_init(r)) for r in records)

    def read(self, path: Path) -> Iterator[SessionFeed]:
        self._feed: SessionFeed | None = None
        lines = Peekable(read_json_lines(path, self._problem))
        index = 0
        while lines.peek() is not None:
            self._feed = SessionFeed(
                importer=self.name, file=path, fallback_id=f"{path.name}#{index}"
            )
            self._feed.entries = _Session(self._feed).entries(lines)
            yield self._feed
            index += 1

    def _problem(self, problem: TranscriptError) -> None:
        # A bad line belongs to the session being read when it turns up.
        if self._feed is not None:
            self._feed.problems.add(problem)


class _Session:
    def __init__(self, feed: SessionFeed) -> None:
        self.feed = feed
        self.keys = MessageKeys()
        self.types: Counter[str] = Counter()
        self.subagents: Counter[str] = Counter()  # parent tool use -> its sub-agent's lines

    def entries(self, lines: Peekable) -> Iterator[Entry]:
        merger = ResponseMerger()
        while (item := lines.peek()) is not None:
            if self.types and _is_init(item.record):
                break  # the next run's session
            lines.take()
            self._note(item.record)
            for ready in merger.push(item):
                yield self._entry(ready)
        for ready in merger.close():
            yield self._entry(ready)
        self.feed.metadata |= {"line_types": dict(self.types), "subagents": self._described()}

    def _note(self, record: dict[str, Any]) -> None:
        self.types[str(record.get("type"))] += 1
        if not self.feed.session_id and isinstance(record.get("session_id"), str):
            self.feed.session_id = record["session_id"]
        parent = record.get("parent_tool_use_id")
        if isinstance(parent, str) and parent:
            self.subagents[parent] += 1

    def _entry(self, item: Numbered) -> Entry:
        record = item.record
        if record.get("type") == "result":
            record = _all_models(record)
        return Entry(payload=record, uuid=self.keys.key(record)[:100], line=item.line)

    def _described(self) -> list[dict[str, Any]]:
        # The same shape as the transcript importer's list (its agent ids are not in the log).
        return [
            {
                "agent_id": None,
                "tool_use_id": tool_use,
                "source": "parent_tool_use_id",
                "kind": "subagent",
                "lines": count,
            }
            for tool_use, count in self.subagents.items()
        ]


def _all_models(result: dict[str, Any]) -> dict[str, Any]:
    """A result whose totals cover every model, as its cost does (see the module docstring)."""
    models = result.get("modelUsage")
    if not isinstance(models, dict) or "model_usage" in result:
        return result
    totals = dict.fromkeys(MODEL_USAGE_FIELDS.values(), 0)
    for usage in models.values():
        for camel, name in MODEL_USAGE_FIELDS.items():
            value = usage.get(camel) if isinstance(usage, dict) else None
            if isinstance(value, int) and not isinstance(value, bool):
                totals[name] += value
    usage = result.get("usage")
    main: dict[str, Any] = usage if isinstance(usage, dict) else {}
    return result | {"model_usage": models, "usage": main | totals, "main_model_usage": main}


def _is_init(record: dict[str, Any]) -> bool:
    return record.get("type") == "system" and record.get("subtype") == "init"
