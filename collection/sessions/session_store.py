"""A Claude Agent SDK `SessionStore` backed by the database: live transcript mirroring.

    options = ClaudeAgentOptions(session_store=DatabaseSessionStore(), ...)

Each transcript key (project_key, session_id, subpath) is one imported `Execution` whose
`Message` rows hold the transcript entries in append order, payloads verbatim. Its place in the
store lives in `Execution.metadata["mirror"]`:

    {"project_key": ..., "subpath": "" for the main transcript,
     "mtime": storage write time in epoch ms, "summary": SDK summary sidecar (main only),
     "parent_execution_id": the main transcript's execution (sub-agent transcripts only)}

A session collected live is one execution whatever writes it. While the live collector is still
writing its execution, the main transcript is mirrored into an execution of its own (two writers
on one message sequence would race); when the live execution is finished, `join_mirror` (called
by `lifecycle.finish`) folds the mirror into it, and later appends go straight to it. A live
session's sub-agent transcripts are mirrored on their own while it runs, then folded into the
live execution too, under the call that started each (`_fold_subagent`); the store keeps which
rows each one's lines are, in order, and `load` gives them back. A session
imported from its transcript before it was mirrored (imported, then resumed with the store) is
mirrored into its imported execution; the lines of a response the import merged into one
message are not stored again.
Its lines the stream already stored (same uuid) keep one row: the transcript's fields are added
to the stored payload, so `load` gives the SDK the transcript's lines back. Lines without a uuid
are keyed by content and occurrence as the importers key them (`ContentKeys`), so importing the
transcript later finds them stored.

The SDK calls the store from its event loop; the ORM is sync, so every method runs its
database work in one thread-sensitive `sync_to_async` call, and each append in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast

from asgiref.sync import sync_to_async
from claude_agent_sdk import fold_session_summary
from claude_agent_sdk.types import (
    SessionKey,
    SessionListSubkeysKey,
    SessionStore,
    SessionStoreEntry,
    SessionStoreListEntry,
    SessionSummaryEntry,
)
from django.db import connections, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from collection.lifecycle import CLAUDE_SESSION_IMPORTERS, open_execution
from collection.models import Execution, Message, Source, Task, TaskStatus
from collection.sanitize import storable_message
from collection.sessions.task_inference import first_prompt, task_for

P = ParamSpec("P")
R = TypeVar("R")

# Marks the tasks this module made up, so it only ever removes its own.
TASK_MARK = "session_store"
# Message types only the live stream has; transcripts' own system lines carry a parentUuid.
STREAM_ONLY = ("system", "result")


class DatabaseSessionStore(SessionStore):
    """Mirror SDK session transcripts into executions and messages (all optional methods too)."""

    async def append(self, key: SessionKey, entries: list[SessionStoreEntry]) -> None:
        if entries:
            await _run(append_entries, key, entries)

    async def load(self, key: SessionKey) -> list[SessionStoreEntry] | None:
        return await _run(load_entries, key)

    async def list_sessions(self, project_key: str) -> list[SessionStoreListEntry]:
        return await _run(list_sessions, project_key)

    async def list_session_summaries(self, project_key: str) -> list[SessionSummaryEntry]:
        return await _run(list_session_summaries, project_key)

    async def delete(self, key: SessionKey) -> None:
        await _run(delete_session, key)

    async def list_subkeys(self, key: SessionListSubkeysKey) -> list[str]:
        return await _run(list_subkeys, key)


async def _run(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    return await sync_to_async(_with_healthy_connections(func), thread_sensitive=True)(
        *args, **kwargs
    )


def _with_healthy_connections(func: Callable[P, R]) -> Callable[P, R]:
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        # An event-loop helper thread never passes through Django's request cycle, so retire
        # broken or expired connections here (never one a caller holds a transaction on).
        for connection in connections.all(initialized_only=True):
            if not connection.in_atomic_block:
                connection.close_if_unusable_or_obsolete()
        return func(*args, **kwargs)

    return call


# --- The sync operations (callable directly from sync code and tests) ------------------------


def append_entries(key: SessionKey, entries: list[SessionStoreEntry]) -> None:
    """Store a batch once and in order: entries with a uuid are idempotent, others are not."""
    with transaction.atomic():
        execution = _keyed(key).select_for_update().first()
        if execution is not None and execution.source == Source.IMPORTED:
            execution = _fold_into_live(execution, key)
        execution = (
            execution
            or _folded_into(key, lock=True)
            or _adopt_live(key)
            or _adopt_imported(key)
            or _create_execution(key, entries)
        )
        if _subpath(key) and execution.metadata["mirror"]["subpath"] != _subpath(key):
            stored = _store_subagent_entries(execution, _subpath(key), entries)
        else:
            stored = [entry for entry in entries if _store_entry(execution, entry)]
        if stored:
            _stamp(execution, key, stored)


def load_entries(key: SessionKey) -> list[SessionStoreEntry] | None:
    execution = _keyed(key).first()
    if execution is not None:
        return _transcript(execution)
    live = _folded_into(key)
    return None if live is None else _subagent_transcript(live, _subpath(key))


def _transcript(execution: Execution) -> list[SessionStoreEntry]:
    messages = execution.messages.order_by("seq")
    if execution.source != Source.IMPORTED:
        # Only the stream had these (init, result, ...): they are no transcript lines.
        messages = messages.exclude(Q(type__in=STREAM_ONLY) & ~Q(payload__has_key="parentUuid"))
    return list(messages.values_list("payload", flat=True))


def list_sessions(project_key: str) -> list[SessionStoreListEntry]:
    latest: dict[str, int] = {}
    for execution in _mirrors(project_key).filter(metadata__mirror__subpath=""):
        latest[execution.session_id] = max(_mtime(execution), latest.get(execution.session_id, 0))
    return [{"session_id": sid, "mtime": mtime} for sid, mtime in latest.items()]


def list_session_summaries(project_key: str) -> list[SessionSummaryEntry]:
    mains = _mirrors(project_key).filter(metadata__mirror__subpath="")
    summaries = {e.session_id: e.metadata["mirror"].get("summary") for e in mains}
    return [summary for summary in summaries.values() if summary]


def delete_session(key: SessionKey) -> None:
    """Delete one transcript; deleting the main transcript takes its sub-agents with it."""
    with transaction.atomic():
        folded = _folded_into(key, lock=True)
        if folded is not None:  # the session's record keeps the turns; the store forgets them
            del folded.metadata["mirror"]["subagents"][_subpath(key)]
            folded.save(update_fields=["metadata"])
    doomed = _keyed(key) if _subpath(key) else _mirrors(key["project_key"], key["session_id"])
    # A live execution is the session's record, not the store's: it only stops being a mirror.
    for live in doomed.exclude(source=Source.IMPORTED):
        del live.metadata["mirror"]
        live.save(update_fields=["metadata"])
    doomed.filter(source=Source.IMPORTED).delete()


def list_subkeys(key: SessionListSubkeysKey) -> list[str]:
    executions = _mirrors(key["project_key"], key["session_id"])
    subpaths = {e.metadata["mirror"]["subpath"] for e in executions}
    for execution in executions:
        subpaths |= set(execution.metadata["mirror"].get("subagents", {}))
    return sorted(subpaths - {""})


# --- Keys and rows -------------------------------------------------------------------------


def _subpath(key: SessionKey) -> str:
    # The protocol forbids an empty subpath, so "" safely means "the main transcript".
    return key.get("subpath") or ""


def _mirrors(project_key: str, session_id: str | None = None) -> QuerySet[Execution]:
    executions = Execution.objects.filter(metadata__mirror__project_key=project_key)
    if session_id is not None:
        executions = executions.filter(session_id=session_id)
    # Oldest first: should two processes ever race to create a key, both keep using one row.
    return executions.order_by("id")


def _keyed(key: SessionKey) -> QuerySet[Execution]:
    return _mirrors(key["project_key"], key["session_id"]).filter(
        metadata__mirror__subpath=_subpath(key)
    )


def _main_key(key: SessionKey) -> SessionKey:
    return {"project_key": key["project_key"], "session_id": key["session_id"]}


def _create_execution(key: SessionKey, entries: list[SessionStoreEntry]) -> Execution:
    subpath = _subpath(key)
    mirror: dict[str, Any] = {"project_key": key["project_key"], "subpath": subpath}
    parent = _keyed(_main_key(key)).first() if subpath else None
    if parent is not None:
        mirror["parent_execution_id"] = parent.pk
    # A mirror never learns that its session ended: it stays open (in progress).
    execution = open_execution(
        # A sub-agent's prompt is no name for the session's task: without a parent yet, it gets
        # the placeholder until the parent arrives (see _adopt_subagents).
        parent.task if parent else _task_for(key["session_id"], [] if subpath else entries),
        source=Source.IMPORTED,
        session_id=key["session_id"],
        agent_id=subpath.rsplit("/", 1)[-1].removeprefix("agent-")[:100],
        started_at=timezone.now(),
        metadata={"mirror": mirror},
    )
    if not subpath:
        _adopt_subagents(execution, key)
    return execution


def _adopt_subagents(main: Execution, key: SessionKey) -> None:
    """Link sub-agent transcripts that arrived before their parent and file them under its task.

    With the bundled CLI a sub-agent's transcript reaches the store before its parent's
    (seen in real sessions), so this is the usual path, not a corner case.
    """
    orphans = _mirrors(key["project_key"], key["session_id"]).exclude(metadata__mirror__subpath="")
    stand_ins: set[int] = set()
    for orphan in orphans.exclude(metadata__mirror__has_key="parent_execution_id"):
        stand_ins.add(orphan.task_id)
        orphan.metadata["mirror"]["parent_execution_id"] = main.pk
        orphan.task = main.task
        orphan.save(update_fields=["metadata", "task"])
    # The placeholder tasks those orphans were filed under are now empty: drop them.
    Task.objects.filter(
        pk__in=stand_ins, metadata__created_by=TASK_MARK, executions__isnull=True
    ).delete()


def _adopt_live(key: SessionKey) -> Execution | None:
    """The live execution of this session, which becomes its main transcript's mirror."""
    if _subpath(key):
        return None  # the live execution holds sub-agent turns inline, not as transcripts
    live = _live(key["session_id"])
    if live is not None:
        live.metadata = live.metadata | {"mirror": {"project_key": key["project_key"]}}
        live.metadata["mirror"]["subpath"] = ""
        live.save(update_fields=["metadata"])
    return live


def _adopt_imported(key: SessionKey) -> Execution | None:
    """The session's execution imported from its transcript (a session imported, then resumed
    with the store): it becomes its main transcript's mirror, so the session stays one."""
    if _subpath(key):
        return None
    sid = key["session_id"]
    imported = (
        Execution.objects.select_for_update()
        .filter(source=Source.IMPORTED, session_id=sid, agent_id="")
        .filter(import_key__in=[f"{name}:{sid}" for name in CLAUDE_SESSION_IMPORTERS])
        .order_by("id")
        .first()
    )
    if imported is not None:
        imported.metadata = imported.metadata | {
            "mirror": {"project_key": key["project_key"], "subpath": ""}
        }
        imported.save(update_fields=["metadata"])
    return imported


def _live(session_id: str) -> Execution | None:
    """The session's finished live execution (locked): only then is nobody else writing it."""
    return (
        Execution.objects.select_for_update()
        .filter(session_id=session_id, agent_id="")
        .exclude(source=Source.IMPORTED)
        .exclude(status__in=[TaskStatus.PENDING, TaskStatus.IN_PROGRESS])
        .order_by("id")
        .first()
    )


def join_mirror(live: Execution) -> None:
    """Fold the mirrored main transcript of a live session, now finished, into its execution."""
    if live.source == Source.IMPORTED or not live.session_id or live.agent_id:
        return
    with transaction.atomic():
        mirror = (
            Execution.objects.select_for_update()
            .filter(source=Source.IMPORTED, session_id=live.session_id)
            .filter(metadata__mirror__subpath="")
            .order_by("id")
            .first()
        )
        if mirror is not None:
            _fold(mirror, live)
        subagents = (
            Execution.objects.select_for_update()
            .filter(source=Source.IMPORTED, session_id=live.session_id)
            .filter(metadata__mirror__has_key="subpath")
            .order_by("id")
        )
        for sub in subagents:
            if sub.metadata["mirror"]["subpath"]:
                _fold_subagent(sub, live)


def _fold_into_live(mirror: Execution, key: SessionKey) -> Execution:
    """A transcript mirrored while its session ran live, the live execution now finished:
    move its lines there, the session's one execution from now on."""
    live = _live(key["session_id"])
    if live is None:
        return mirror
    return _fold_subagent(mirror, live) if _subpath(key) else _fold(mirror, live)


def _fold_subagent(mirror: Execution, live: Execution) -> Execution:
    """A sub-agent's transcript, mirrored on its own while the session ran, into the live
    execution, where the stream put the sub-agent's turns under the call that started it: its
    lines join them (as the importers nest a sub-agent's file), and the store keeps which they
    are, in order, to give the SDK that transcript back (`_subagent_transcript`)."""
    subpath = mirror.metadata["mirror"]["subpath"]
    entries = list(mirror.messages.order_by("seq").values_list("payload", flat=True))
    task_id = mirror.task_id
    mirror.delete()
    project_key = mirror.metadata["mirror"]["project_key"]
    live.metadata.setdefault("mirror", {"project_key": project_key, "subpath": ""})
    _store_subagent_entries(live, subpath, entries)
    live.save(update_fields=["metadata"])
    Task.objects.filter(
        pk=task_id, metadata__created_by=TASK_MARK, executions__isnull=True
    ).delete()
    return live


def _store_subagent_entries(
    live: Execution, subpath: str, entries: list[SessionStoreEntry] | list[Any]
) -> list[SessionStoreEntry]:
    """Store a sub-agent transcript's entries in the session's execution, each once, and
    remember their keys under `subpath` (in `metadata["mirror"]["subagents"]`)."""
    keys: list[str] = live.metadata["mirror"].setdefault("subagents", {}).setdefault(subpath, [])
    known, stored = set(keys), []
    for entry in entries:
        payload = storable_message(dict(entry))
        uuid = payload.get("uuid")
        key = str(uuid) if uuid else _content_key(live, payload)
        if key in known:
            continue  # the same line again: a uuid is stored once
        message, _ = live.append_message(payload, uuid=key)
        if message.payload != payload and live.source != Source.IMPORTED:
            _add_transcript_fields(message, payload)
        keys.append(key)
        known.add(key)
        stored.append(entry)
    _link_subagent(live, keys)
    return stored


def _link_subagent(live: Execution, keys: list[str]) -> None:
    """The transcript's own lines the stream never sent (the sub-agent's prompt) are put
    under the call that started the sub-agent, as the stream's turns of it are."""
    rows = live.messages.filter(uuid__in=keys)
    link = rows.exclude(parent_tool_use_id="").values_list("parent_tool_use_id", flat=True)
    parent = link.first()
    if parent:
        rows.filter(parent_tool_use_id="").update(parent_tool_use_id=parent)


def _folded_into(key: SessionKey, *, lock: bool = False) -> Execution | None:
    """The session's execution a sub-agent transcript was folded into (`_fold_subagent`)."""
    subpath = _subpath(key)
    if not subpath:
        return None
    executions = _mirrors(key["project_key"], key["session_id"]).filter(
        metadata__mirror__subpath=""
    )
    if lock:
        executions = executions.select_for_update()
    for execution in executions:
        if subpath in execution.metadata["mirror"].get("subagents", {}):
            return execution
    return None


def _subagent_transcript(live: Execution, subpath: str) -> list[SessionStoreEntry]:
    keys = live.metadata["mirror"]["subagents"][subpath]
    payloads = dict(live.messages.filter(uuid__in=keys).values_list("uuid", "payload"))
    return [payloads[key] for key in keys if key in payloads]


def _fold(mirror: Execution, live: Execution) -> Execution:
    for message in mirror.messages.order_by("seq"):
        _merge_or_append(live, message.payload, message.uuid)
    folded = live.metadata.get("mirror", {}).get("subagents")  # sub-agents folded in first
    mirrored = mirror.metadata["mirror"] | ({"subagents": folded} if folded else {})
    live.metadata = live.metadata | {"mirror": mirrored}
    live.save(update_fields=["metadata"])
    task_id = mirror.task_id
    mirror.delete()
    Task.objects.filter(
        pk=task_id, metadata__created_by=TASK_MARK, executions__isnull=True
    ).delete()
    return live


def _store_entry(execution: Execution, entry: SessionStoreEntry) -> bool:
    payload = storable_message(dict(entry))
    uuid = payload.get("uuid")
    if uuid and _imported_in_a_response(execution, payload):
        return False
    key = str(uuid) if uuid else _content_key(execution, payload)
    return _merge_or_append(execution, payload, key)


def _imported_in_a_response(execution: Execution, payload: dict[str, Any]) -> bool:
    """An assistant line an import already stored, merged into its response's one message
    (keyed by the response's id; see `importers.merging`): not stored a second time."""
    if payload.get("type") != "assistant" or "import_key" not in execution.metadata:
        return False
    response = payload.get("message")
    rid = response.get("id") if isinstance(response, dict) else None
    if not isinstance(rid, str) or not rid:
        return False
    merged = execution.messages.filter(uuid=rid).values_list("payload", flat=True).first()
    if not isinstance(merged, dict):
        return False
    lines = [merged.get("uuid"), *(m.get("uuid") for m in merged.get("merged_lines") or [])]
    return payload["uuid"] in lines


def _content_key(execution: Execution, payload: dict[str, Any]) -> str:
    """Entries without a uuid (titles, tags, mode markers) are never deduplicated, not even by
    content: each occurrence gets its own key, the one the importers give it (`ContentKeys`)."""
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    prefix = f"sha256:{hashlib.sha256(blob).hexdigest()[:32]}:"
    return f"{prefix}{execution.messages.filter(uuid__startswith=prefix).count()}"


def _merge_or_append(execution: Execution, payload: dict[str, Any], key: str) -> bool:
    message, created = execution.append_message(payload, uuid=key)
    if not created and execution.source != Source.IMPORTED:
        _add_transcript_fields(message, payload)
    return created


def _add_transcript_fields(message: Message, entry: dict[str, Any]) -> None:
    # The live row stays as the stream sent it (its derived rows point at it); the transcript
    # adds what resuming needs (parentUuid, timestamps, ...).
    merged = entry | message.payload
    if merged != message.payload:
        message.payload = merged
        message.save(update_fields=["payload"])


def _stamp(execution: Execution, key: SessionKey, stored: list[SessionStoreEntry]) -> None:
    """Record the storage write time and, for a main transcript, fold the summary sidecar."""
    mirror = execution.metadata["mirror"]
    # Strictly increasing, so back-to-back appends always look newer.
    mirror["mtime"] = max(int(time.time() * 1000), mirror.get("mtime", 0) + 1)
    if not _subpath(key):
        if "summary" not in mirror and execution.source != Source.IMPORTED:
            # The live collector saved over the mirror's state: fold the whole transcript again.
            stored = _transcript(execution)
        summary = fold_session_summary(mirror.get("summary"), key, stored)
        # Same clock as list_sessions, as the SDK's staleness check requires.
        summary["mtime"] = mirror["mtime"]
        mirror["summary"] = summary
    execution.save(update_fields=["metadata"])


def _mtime(execution: Execution) -> int:
    stamped = execution.metadata["mirror"].get("mtime")
    return stamped or int(execution.created_at.timestamp() * 1000)


# --- The task a mirrored session is filed under ------------------------------------------


def _task_for(session_id: str, entries: list[SessionStoreEntry]) -> Task:
    """The imported task named after the session's first prompt, as the importers name it."""
    prompts = (first_prompt(e) for e in cast("list[dict[str, Any]]", entries))
    return task_for(
        next((p for p in prompts if p), ""),
        name="",
        importer="session_store",
        fallback=f"Mirrored session {session_id}",
        created_by=TASK_MARK,
    )
