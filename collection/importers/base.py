"""The importer plug-in contract: what an importer yields, and the one error type it raises.

An importer turns one file into `SessionFeed`s. A feed streams `Entry`s: stream-json-shaped
payload dicts (the shape `collection.sessions.trajectory.TrajectoryRecorder` stores), each with
the key that makes storing it idempotent. `collection.importers.writer` stores a feed as one
execution.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from collection.lifecycle import Outcome

# Line problems kept per session; a file of garbage must not grow the report without bound.
MAX_PROBLEMS = 100


class TranscriptError(Exception):
    """A transcript, or one line of it, cannot be imported: says which file, which line, why.

    Retrying never helps (`retryable` is False): the same bytes fail the same way.
    """

    retryable = False

    def __init__(self, file: Path | str, line: int | None, reason: str) -> None:
        self.file = str(file)
        self.line = line
        self.reason = reason
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.reason}"


class NotATranscript(TranscriptError):
    """No importer recognises the file (a folder walk ignores such files instead of failing)."""


@dataclass
class Head:
    """The start of a file, for sniffing: its text and the JSON lines that fit in it."""

    path: Path
    text: str
    records: list[dict[str, Any]]


@dataclass
class Entry:
    """One message to store: a stream-json-shaped payload and its idempotency key."""

    payload: dict[str, Any]
    uuid: str
    line: int | None = None
    # The file the entry came from when it is not the feed's (a sub-agent transcript).
    file: Path | None = None
    # The agent speaking, for turns no delegating tool call can be found for.
    agent: str = ""
    # Structured tool output kept outside the stream-json shape (Claude Code's toolUseResult).
    structured_result: Any = None
    # Reasoning to set on the actions of this message (a SWE-agent or OpenHands thought).
    reasoning: str = ""


class Problems:
    """Lines skipped while reading a session, capped at MAX_PROBLEMS (the rest only counted)."""

    def __init__(self) -> None:
        self.items: list[TranscriptError] = []
        self.dropped = 0

    def add(self, problem: TranscriptError) -> None:
        if len(self.items) < MAX_PROBLEMS:
            self.items.append(problem)
        else:
            self.dropped += 1

    def __len__(self) -> int:
        return len(self.items) + self.dropped

    def __bool__(self) -> bool:
        return len(self) > 0


@dataclass
class SessionFeed:
    """One session read from a file, streamed.

    `session_id` and `metadata` may be filled in while `entries` is consumed; `session_id` must
    be known once the first user prompt or assistant message has been yielded (the writer
    reads it then), else `fallback_id` is used.
    """

    importer: str
    file: Path
    fallback_id: str
    entries: Iterator[Entry] = field(default_factory=lambda: iter(()))
    session_id: str = ""
    agent_id: str = ""
    task_name: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    # How the session ended when the source says so; None leaves the decision to the writer.
    outcome: Outcome | None = None
    problems: Problems = field(default_factory=Problems)
    # Totals the source states outright (SWE-agent's model_stats), used over the tally.
    reported_usage: dict[str, int] | None = None
    reported_cost: float | None = None
    reported_turns: int | None = None
    # A read resumed where an earlier one stopped (`Importer.resume`): that read's checkpoint,
    # whose "tracker" the writer starts from.
    resumed: dict[str, Any] | None = None
    # Where the next read resumes, JSON: set by the importer once `entries` is consumed,
    # completed with the writer's "tracker" once the session is stored.
    checkpoint: dict[str, Any] | None = None
    bytes_read: int = 0  # by a resumed read, from the files it read
    # Read while still being written (the watch): a session stored before is updated, not
    # closed again (scored, made an example) at every read; the watch closes it once quiet.
    running: bool = False

    @property
    def key(self) -> str:
        """What makes re-importing idempotent: same key, same execution."""
        base = f"{self.importer}:{self.session_id or self.fallback_id}"
        return f"{base}:agent-{self.agent_id}" if self.agent_id else base


class Importer:
    """Reads one kind of agent transcript.

    Subclasses set `name` (their key in `IMPORTERS`, recorded on each execution) and `label`,
    say which files are theirs in `recognises`, and implement `read`.
    """

    name: ClassVar[str]
    label: ClassVar[str]
    # Whether `resume` reads a growing file from where the last read stopped.
    resumes: ClassVar[bool] = False

    @classmethod
    def recognises(cls, head: Head) -> bool:
        """Whether a file that starts like `head` is this importer's kind of transcript."""
        raise NotImplementedError

    def read(self, path: Path) -> Iterator[SessionFeed]:
        """Yield the file's sessions, reading it as a stream.

        The caller consumes each feed's entries before asking for the next feed. Lines that
        can't be used go to the feed's `problems` and are skipped; a problem with the whole
        file raises `TranscriptError`.
        """
        raise NotImplementedError

    def resume(self, path: Path, checkpoint: dict[str, Any] | None) -> Iterator[SessionFeed]:
        """`read`, for a file still being written: only what follows `checkpoint` (the last
        feed's `checkpoint`; None reads from the start), complete lines only. Importers that
        set `resumes` implement it."""
        raise NotImplementedError


class ContentKeys:
    """Stable keys for records without a uuid: content hash plus occurrence, so two identical
    records in one session stay two messages and a re-import maps each to the same key."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def state(self) -> dict[str, int]:
        return dict(self._seen)

    @classmethod
    def restore(cls, state: dict[str, int]) -> ContentKeys:
        keys = cls()
        keys._seen = dict(state)
        return keys

    def key(self, record: dict[str, Any]) -> str:
        blob = json.dumps(record, sort_keys=True, default=str).encode()
        digest = hashlib.sha256(blob).hexdigest()[:32]
        count = self._seen.get(digest, 0)
        self._seen[digest] = count + 1
        return f"sha256:{digest}:{count}"
