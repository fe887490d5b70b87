"""`claude -p --output-format stream-json` logs, and SDK messages written as JSON lines.

These lines are the payloads `TrajectoryRecorder` takes, so they are stored as they are (the
result message's totals included). A log may hold several runs: each `system/init` line after
the first starts another session.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from collection.importers.base import (
    ContentKeys,
    Entry,
    Head,
    Importer,
    SessionFeed,
    TranscriptError,
)
from collection.importers.reading import Peekable, read_json_lines

TYPES = {"system", "assistant", "user", "result", "stream_event"}


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
            self._feed.entries = self._entries(lines, self._feed)
            yield self._feed
            index += 1

    def _problem(self, problem: TranscriptError) -> None:
        # A bad line belongs to the session being read when it turns up.
        if self._feed is not None:
            self._feed.problems.add(problem)

    def _entries(self, lines: Peekable, feed: SessionFeed) -> Iterator[Entry]:
        keys = ContentKeys()
        types: dict[str, int] = {}
        while (item := lines.peek()) is not None:
            if types and _is_init(item.record):
                break  # the next run's session
            lines.take()
            record = item.record
            kind = str(record.get("type"))
            types[kind] = types.get(kind, 0) + 1
            if not feed.session_id and isinstance(record.get("session_id"), str):
                feed.session_id = record["session_id"]
            uuid = record.get("uuid")
            key = uuid if isinstance(uuid, str) and uuid else keys.key(record)
            yield Entry(payload=record, uuid=key[:100], line=item.line)
        feed.metadata["line_types"] = types


def _is_init(record: dict[str, Any]) -> bool:
    return record.get("type") == "system" and record.get("subtype") == "init"
