"""Storing imported sessions: each one execution, in a savepoint of its own, then scored.

The same session (same importer and session id) always maps to the same execution, and
messages are idempotent on their keys, so re-importing a file adds only what is new. A session
that adds nothing is rolled back whole: re-importing the same file changes nothing at all.

`ImportBatch` stores many sessions in one transaction, each in its own savepoint (a bad session
is rolled back alone), and closes the new ones together: categorising, scoring, search text,
fingerprints and examples are a few statements for the batch (`closing.close_all`), not a
dozen per session, which for short sessions was most of the time an import took.

    with ImportBatch(report) as batch:
        for feed in importer.read(path):
            batch.store(feed)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain, islice
from types import TracebackType
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from collection.importers.base import Entry, SessionFeed, TranscriptError
from collection.importers.closing import Closing, close_all, close_running, prepare
from collection.importers.recorder import ImportRecorder
from collection.importers.report import ImportProblem, ImportReport, SessionReport, SessionStatus
from collection.importers.tracking import SessionTracker
from collection.lifecycle import known_session, open_execution
from collection.models import Execution, Source, Task
from collection.sessions.task_inference import task_for

# Entries read before the execution is opened, looking for the prompt that names its task.
LOOKAHEAD = 200
# Entries recorded between bulk writes: bounds memory, and is a few statements per chunk.
CHUNK = 1000
# New sessions closed together; a batch also ends after this many messages (its transaction,
# which holds SQLite's write lock, stays short).
BATCH_SESSIONS = 50
BATCH_MESSAGES = 20_000


@dataclass
class Stored:
    status: SessionStatus
    execution_id: int | None = None
    session_id: str = ""
    messages_added: int = 0
    error: TranscriptError | None = None
    closing: Closing | None = None  # a new session, closed with its batch


class ImportBatch:
    """Sessions stored in one transaction and closed together; adds them to `report`."""

    def __init__(
        self,
        report: ImportReport,
        *,
        user: AbstractBaseUser | None = None,
        dry_run: bool = False,
    ) -> None:
        self.report, self.user, self.dry_run = report, user, dry_run
        self._atomic: Any = None
        self._pending: list[tuple[Closing, SessionReport]] = []
        self._messages = 0
        self._tasks: dict[tuple[str, ...], Task] = {}

    def __enter__(self) -> ImportBatch:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            self.commit()
        elif self._atomic is not None:
            self._atomic.__exit__(kind, error, traceback)
            self._atomic = None

    def store(self, feed: SessionFeed) -> SessionReport:
        """Store one feed (all or nothing) and report it; new sessions close with the batch."""
        if self._atomic is None:
            self._atomic = transaction.atomic()
            self._atomic.__enter__()
        stored = store_session(feed, user=self.user, dry_run=self.dry_run, tasks=self._tasks)
        session = SessionReport(
            file=str(feed.file),
            importer=feed.importer,
            session_id=stored.session_id or feed.session_id or feed.fallback_id,
            status=stored.status,
            execution_id=stored.execution_id,
            messages_added=stored.messages_added,
        )
        self.report.sessions.append(session)
        self.report.errors += [ImportProblem.from_error(p) for p in feed.problems.items]
        if feed.problems.dropped:
            more = f"{feed.problems.dropped} more unreadable line(s) not listed"
            self.report.errors.append(ImportProblem(file=str(feed.file), reason=more))
        if stored.error is not None:
            self.report.errors.append(ImportProblem.from_error(stored.error))
        if stored.closing is not None:
            self._pending.append((stored.closing, session))
            self._messages += stored.messages_added
        if len(self._pending) >= BATCH_SESSIONS or self._messages >= BATCH_MESSAGES:
            self.commit()
        return session

    def commit(self) -> None:
        """Close the pending sessions and end the transaction (rolled back in a dry run)."""
        if self._atomic is None:
            return
        self._close_pending()
        if self.dry_run:
            transaction.set_rollback(True)
        atomic, self._atomic = self._atomic, None
        atomic.__exit__(None, None, None)

    def _close_pending(self) -> None:
        pending, self._pending, self._messages, self._tasks = self._pending, [], 0, {}
        try:
            with transaction.atomic():
                close_all([closing for closing, _ in pending])
            return
        except Exception:  # noqa: BLE001 - closed again one by one, to find which session
            pass
        for closing, session in pending:
            try:
                with transaction.atomic():
                    close_all([closing])
            except Exception as exc:  # noqa: BLE001 - that session alone fails
                self._fail(closing, session, exc)

    def _fail(self, closing: Closing, session: SessionReport, exc: Exception) -> None:
        # The execution is new, made by this batch: removing it undoes the session.
        Execution.objects.filter(pk=closing.execution.pk).delete()
        session.status, session.execution_id, session.messages_added = "failed", None, 0
        error = TranscriptError(session.file, None, f"{type(exc).__name__}: {exc}")
        self.report.errors.append(ImportProblem.from_error(error))


def store_session(
    feed: SessionFeed,
    *,
    user: AbstractBaseUser | None = None,
    dry_run: bool = False,
    tasks: dict[tuple[str, ...], Task] | None = None,
) -> Stored:
    """Store a feed as one execution (all or nothing). A session seen before is closed at
    once; a new one is returned with its `closing` for its batch to close, given the batch's
    `tasks` cache (else, and in a dry run, it is closed here too)."""
    # A dry run stores and rolls back each session on its own, closed at once: as if alone.
    batched = tasks is not None and not dry_run
    cache = tasks if tasks is not None and batched else {}
    known = set(cache)
    try:
        with transaction.atomic():
            stored = _store(feed, user, cache)
            if stored.closing is not None and not batched:
                close_all([stored.closing])
                stored.closing = None
            if dry_run or stored.status == "skipped":
                transaction.set_rollback(True)
            if dry_run and stored.status == "imported":
                stored.execution_id = None  # rolled back: there is nothing to link to
            if stored.status == "skipped":
                _forget(cache, known)
        return stored
    except TranscriptError as exc:
        _forget(cache, known)
        return _failed(feed, exc)
    except Exception as exc:  # noqa: BLE001 - any failure rolls the session back and is reported
        _forget(cache, known)
        return _failed(feed, TranscriptError(feed.file, None, f"{type(exc).__name__}: {exc}"))


def _forget(cache: dict[tuple[str, ...], Task], known: set[tuple[str, ...]]) -> None:
    # Tasks made in a rolled-back savepoint are gone: later sessions must not point at them.
    for key in set(cache) - known:
        del cache[key]


def _failed(feed: SessionFeed, error: TranscriptError) -> Stored:
    # Read the rest of the session so that the file's next session starts in the right place.
    for _ in _drain(feed.entries):
        pass
    return Stored("failed", session_id=feed.session_id, error=error)


def _drain(entries: Iterator[Entry]) -> Iterator[Entry]:
    try:
        yield from entries
    except TranscriptError:
        return


def _store(
    feed: SessionFeed, user: AbstractBaseUser | None, tasks: dict[tuple[str, ...], Task]
) -> Stored:
    resumed = (feed.resumed or {}).get("tracker")
    tracker = SessionTracker.restore(resumed) if resumed else SessionTracker()
    entries = iter(feed.entries)
    head = _lookahead(entries, tracker)
    execution, created = _open(feed, tracker, user, tasks)
    recorder = ImportRecorder(execution, fresh=created, lazy=resumed is not None)
    added = 0
    for index, chunk in enumerate(_chunks(chain(head, entries))):
        for entry in chunk if index else chunk[len(head) :]:
            tracker.see(entry)
        added += _record_chunk(recorder, chunk, feed)
    if feed.checkpoint is not None:
        opened = {str(rid) for rid in feed.checkpoint.get("open_responses", [])}
        feed.checkpoint["tracker"] = tracker.state(opened)
    # Nothing new: nothing to do, unless the watch is closing a session gone quiet.
    settling = feed.resumed is not None and not feed.running
    if not created and added == 0 and not settling:
        return Stored("skipped", execution.pk, execution.session_id)
    closing = prepare(execution, feed, tracker)
    if closing is not None and not created:
        if feed.running:
            close_running(closing)
        else:  # a session seen before: its example may carry a reviewer's say
            close_all([closing])
        closing = None
    status: SessionStatus = "imported" if created else "updated"
    return Stored(status, execution.pk, execution.session_id, added, closing=closing)


def _chunks(entries: Iterator[Entry]) -> Iterator[list[Entry]]:
    """Entries a chunk at a time: the first holds the whole lookahead (it is never longer)."""
    while chunk := list(islice(entries, CHUNK)):
        yield chunk


def _record_chunk(recorder: ImportRecorder, chunk: list[Entry], feed: SessionFeed) -> int:
    """Record a chunk of entries and write its rows in bulk; how many messages it added."""
    recorder.prefetch(chunk)
    added = 0
    for entry in chunk:
        try:
            added += _record(recorder, entry, feed)
        except Exception as exc:  # say where: the whole session is rolled back for it
            where = entry.file or feed.file
            raise TranscriptError(where, entry.line, f"{type(exc).__name__}: {exc}") from exc
    recorder.flush()
    return added


def _lookahead(entries: Iterator[Entry], tracker: SessionTracker) -> list[Entry]:
    """Read up to the first prompt (or the first response, when the prompt is not logged)."""
    head: list[Entry] = []
    for entry in entries:
        tracker.see(entry)
        head.append(entry)
        if tracker.prompt or tracker.responses or len(head) >= LOOKAHEAD:
            break
    return head


def _open(
    feed: SessionFeed,
    tracker: SessionTracker,
    user: AbstractBaseUser | None,
    tasks: dict[tuple[str, ...], Task],
) -> tuple[Execution, bool]:
    session_id = (feed.session_id or feed.fallback_id)[:100]
    # Imported before, collected live or mirrored: the session's one execution.
    existing = known_session(feed.importer, feed.key[:255], session_id, feed.agent_id[:100])
    if existing:
        _name_late(existing, feed, tracker, tasks)
        return existing, False
    execution = open_execution(
        _task(feed, tracker, tasks),
        source=Source.IMPORTED,
        session_id=session_id,
        agent_id=feed.agent_id[:100],
        import_key=feed.key[:255],
        created_by=user,
        metadata={"importer": feed.importer, "file": str(feed.file), "import_key": feed.key},
    )
    return execution, True


def _task(feed: SessionFeed, tracker: SessionTracker, tasks: dict[tuple[str, ...], Task]) -> Task:
    fallback = _unnamed(feed)
    named = (tracker.prompt, feed.task_name, feed.importer, fallback)
    if named not in tasks:
        tasks[named] = task_for(
            tracker.prompt, name=feed.task_name, importer=feed.importer, fallback=fallback
        )
    return tasks[named]


def _unnamed(feed: SessionFeed) -> str:
    return f"Imported {feed.importer} sessions without a prompt"


def _name_late(
    execution: Execution,
    feed: SessionFeed,
    tracker: SessionTracker,
    tasks: dict[tuple[str, ...], Task],
) -> None:
    """A session first stored before its prompt was written (a watch read it while it began)
    is filed under its prompt once the prompt is read, as an import of the whole file files it."""
    if execution.source != Source.IMPORTED or not tracker.prompt:
        return
    if execution.task.name != _unnamed(feed):
        return
    execution.task = _task(feed, tracker, tasks)
    Execution.objects.filter(pk=execution.pk).update(task=execution.task)


def _record(recorder: ImportRecorder, entry: Entry, feed: SessionFeed) -> int:
    problem = _shape_problem(entry.payload)
    if problem:
        feed.problems.add(TranscriptError(entry.file or feed.file, entry.line, problem))
        return 0
    # No savepoint of its own: the session's transaction is the unit that succeeds or not.
    return 0 if recorder.record_entry(entry) is None else 1


def _shape_problem(payload: dict[str, Any]) -> str:
    """Why a user/assistant payload can't be a message (the recorder expects this shape)."""
    if payload.get("type") not in ("user", "assistant"):
        return ""
    message = payload.get("message")
    if not isinstance(message, dict):
        return f"{payload['type']} line without a message object"
    content = message.get("content")
    if not isinstance(content, list):
        return ""
    if not all(isinstance(b, dict) for b in content):
        return f"{payload['type']} message content holds something other than blocks"
    if any(b.get("type") == "tool_use" and not isinstance(b.get("id"), str) for b in content):
        return "tool_use block without an id"
    return ""
