"""Storing one imported session: one execution, in one transaction, then scored.

The same session (same importer and session id) always maps to the same execution, and
messages are idempotent on their keys, so re-importing a file adds only what is new. A session
that adds nothing is rolled back whole: re-importing the same file changes nothing at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain, islice
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from collection.importers.base import Entry, SessionFeed, TranscriptError
from collection.importers.closing import close
from collection.importers.recorder import ImportRecorder
from collection.importers.report import SessionStatus
from collection.importers.tracking import SessionTracker
from collection.lifecycle import collected_live, open_execution
from collection.models import Execution, Source
from collection.sessions.task_inference import task_for

# Entries read before the execution is opened, looking for the prompt that names its task.
LOOKAHEAD = 200
# Entries recorded between bulk writes: bounds memory, and is a few statements per chunk.
CHUNK = 1000


@dataclass
class Stored:
    status: SessionStatus
    execution_id: int | None = None
    session_id: str = ""
    messages_added: int = 0
    error: TranscriptError | None = None


def store_session(
    feed: SessionFeed, *, user: AbstractBaseUser | None = None, dry_run: bool = False
) -> Stored:
    """Store a feed as one execution (all or nothing) and score it."""
    try:
        with transaction.atomic():
            stored = _store(feed, user)
            if dry_run or stored.status == "skipped":
                transaction.set_rollback(True)
            if dry_run and stored.status == "imported":
                stored.execution_id = None  # rolled back: there is nothing to link to
        return stored
    except TranscriptError as exc:
        return _failed(feed, exc)
    except Exception as exc:  # noqa: BLE001 - any failure rolls the session back and is reported
        return _failed(feed, TranscriptError(feed.file, None, f"{type(exc).__name__}: {exc}"))


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


def _store(feed: SessionFeed, user: AbstractBaseUser | None) -> Stored:
    tracker = SessionTracker()
    entries = iter(feed.entries)
    head = _lookahead(entries, tracker)
    execution, created = _open(feed, tracker, user)
    recorder = ImportRecorder(execution, fresh=created)
    added = 0
    for index, chunk in enumerate(_chunks(chain(head, entries))):
        for entry in chunk if index else chunk[len(head) :]:
            tracker.see(entry)
        added += _record_chunk(recorder, chunk, feed)
    if not created and added == 0:
        return Stored("skipped", execution.pk, execution.session_id)
    close(execution, feed, tracker)
    return Stored("imported" if created else "updated", execution.pk, execution.session_id, added)


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
    feed: SessionFeed, tracker: SessionTracker, user: AbstractBaseUser | None
) -> tuple[Execution, bool]:
    session_id = (feed.session_id or feed.fallback_id)[:100]
    existing = (
        Execution.objects.select_for_update()
        .filter(source=Source.IMPORTED, session_id=session_id, metadata__import_key=feed.key)
        .order_by("id")
        .first()
    )
    # The same session collected live (and mirrored) is that execution, not a second one.
    existing = existing or collected_live(feed.importer, session_id, feed.agent_id[:100])
    if existing:
        return existing, False
    fallback = f"Imported {feed.importer} sessions without a prompt"
    task = task_for(tracker.prompt, name=feed.task_name, importer=feed.importer, fallback=fallback)
    execution = open_execution(
        task,
        source=Source.IMPORTED,
        session_id=session_id,
        agent_id=feed.agent_id[:100],
        created_by=user,
        metadata={"importer": feed.importer, "file": str(feed.file), "import_key": feed.key},
    )
    return execution, True


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
