"""The trajectory recorder as importers use it: the same rows, written in bulk.

`TrajectoryRecorder` stores stream-json payloads one statement at a time and derives tool
calls, actions and metrics. Importers add four things: the message key comes from the importer
(a response id, a history index), turns of a sub-agent nobody delegated to are credited to that
agent, what the stream-json shape has no field for (Claude Code's `toolUseResult`, a SWE-agent
thought) is handed to the recorder's handlers with the payload, and rows are buffered and
written with `bulk_create` at each `flush()` (the writer flushes every chunk of entries), so a
session costs a few statements per chunk instead of several per message.

The session's stored keys (message uuids, tool-call ids) are read once, so re-importing a file
is a dictionary lookup per line; only stored responses read again are fetched, a chunk at a
time (`prefetch`), to see whether they grew.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import orjson
from django.db import connection
from django.db.models import DateTimeField, JSONField, Max, Model
from django.utils import timezone

from collection.importers.base import Entry
from collection.models import AgentAction, AgentRole, Execution, Message, Source, ToolCall
from collection.sessions.trajectory import SUBAGENT_TOOLS, TrajectoryRecorder

# Rows per INSERT: well under SQLite's 32766 bound variables for the widest table.
BATCH_SIZE = 500
# Values the database drivers take as they are.
PLAIN = {str, int, float, bool, type(None)}


class ImportRecorder(TrajectoryRecorder):
    unlinked_agent = ""

    def __init__(
        self, execution: Execution, *, step: str = "", fresh: bool = False, lazy: bool = False
    ) -> None:
        # Nothing stored yet: no delegations to read (a query, a tenth of a short session's
        # import on PostgreSQL).
        super().__init__(execution, step=step, delegations={} if fresh else None)
        # Stored (and flushed) messages: key -> type. A fresh execution has none.
        self._stored: dict[str, str] = {}
        self._stored_calls: set[str] = set()  # their tool_use_ids
        # Agents with stored actions not yet promoted to coordinator.
        self._stored_agents: set[str] = set()
        self._seq = 0
        # A transcript the SessionStore mirrored: its lines are stored, one message each, but
        # nothing was derived from them (tool calls, actions). See `_adopt`.
        self.adopting = execution.source == Source.IMPORTED and "mirror" in execution.metadata
        self._stored_ids: dict[str, int] = {}
        self._unanswered: set[str] = set()  # stored calls without a result yet
        self._derived = 0
        # Lazy (a resumed read of a growing file): stored keys are looked up a chunk at a time,
        # for the entries read, so a read costs what it reads, not what the session holds.
        self.lazy = lazy and not fresh and not self.adopting
        if self.lazy:
            self._seq = self.execution.messages.aggregate(m=Max("seq"))["m"] or 0
        elif not fresh:
            self._load_keys()
        self._grown: dict[str, Message] = {}  # stored responses fetched by `prefetch`
        self._messages: dict[str, Message] = {}
        self._calls: dict[str, ToolCall] = {}
        self._answers: dict[str, ToolCall] = {}  # results for stored calls
        self._actions: list[AgentAction] = []

    def _load_keys(self) -> None:
        if self.adopting:
            stored = self.execution.messages.values_list("uuid", "type", "pk")
            self._stored_ids = {uuid: pk for uuid, _, pk in stored}
            self._stored = {uuid: kind for uuid, kind, _ in stored}
            unanswered = self.execution.tool_calls.filter(answered_in__isnull=True)
            self._unanswered = set(unanswered.values_list("tool_use_id", flat=True))
        else:
            self._stored = dict(self.execution.messages.values_list("uuid", "type"))
        self._seq = self.execution.messages.aggregate(m=Max("seq"))["m"] or 0
        self._stored_calls = set(self.execution.tool_calls.values_list("tool_use_id", flat=True))
        actions = self.execution.actions.exclude(role=AgentRole.COORDINATOR)
        self._stored_agents = set(actions.values_list("agent_id", flat=True).distinct())

    # --- reading -----------------------------------------------------------------------------

    def prefetch(self, entries: Iterable[Entry]) -> None:
        """Fetch, in one query, the stored responses among `entries` (they may have grown)."""
        if self.lazy:
            entries = list(entries)
            self._look_up(entries)
        keys = [key for key in map(entry_key, entries) if self._stored.get(key) == "assistant"]
        if not keys:
            self._grown = {}
            return
        self._grown = {m.uuid: m for m in self.execution.messages.filter(uuid__in=keys)}

    def _look_up(self, entries: list[Entry]) -> None:
        """Which of these entries, and of the tool calls they make or answer, are stored."""
        keys = [entry_key(entry) for entry in entries if entry_key(entry) not in self._stored]
        stored = self.execution.messages.filter(uuid__in=keys).values_list("uuid", "type")
        self._stored |= dict(stored)
        ids = {i for entry in entries for i in _call_ids(entry.payload)} - self._stored_calls
        calls = self.execution.tool_calls.filter(tool_use_id__in=list(ids))
        self._stored_calls |= set(calls.values_list("tool_use_id", flat=True))

    def record_entry(self, entry: Entry) -> Message | None:
        """Store an entry once; None when it was stored before (and nothing grew)."""
        self.unlinked_agent = entry.agent
        payload = entry.payload
        key = entry_key(entry)
        known = self._messages.get(key) or self._grown.get(key)
        if known is not None:
            return self._grow(known, payload)
        if self.adopting:
            stored = key if key in self._stored else _first_line(payload, self._stored)
            if stored:
                return self._adopt(entry, stored)
        if key in self._stored:
            return None
        message = self._new_message(key, payload)
        handler = getattr(self, f"_on_{payload.get('type')}", None)
        if handler:
            # The stored payload stays as read; only the handlers see the additions.
            handler(_derivable(entry), message)
        return message

    def _adopt(self, entry: Entry, key: str) -> Message | None:
        """Derive what a mirrored line gives (its tool calls, actions, results) on the row the
        mirror stored; None when that was done before. The mirror keeps its rows, one per line,
        as the SDK reads them back: a response is not stored again merged."""
        handler = getattr(self, f"_on_{entry.payload.get('type')}", None)
        if handler is None:
            return None
        message = Message(pk=self._stored_ids[key], execution=self.execution, uuid=key)
        derived = self._derived
        handler(_derivable(entry), message)
        return message if self._derived > derived else None

    def _new_message(self, key: str, payload: dict[str, Any]) -> Message:
        self._seq += 1
        message = Message(
            execution=self.execution,
            seq=self._seq,
            uuid=key,
            type=str(payload.get("type", "")),
            subtype=str(payload.get("subtype", "") or ""),
            parent_tool_use_id=payload.get("parent_tool_use_id") or "",
            step=self.step,
            payload=payload,
        )
        self._messages[key] = message
        return message

    def _grow(self, message: Message, payload: dict[str, Any]) -> Message | None:
        """A response read again with more blocks (its file was cut mid-response when first
        imported): store the longer one and derive what the new blocks add."""
        if payload.get("type") != "assistant" or message.type != "assistant":
            return None
        old = (message.payload.get("message") or {}).get("content")
        new = payload["message"].get("content")
        if not (isinstance(old, list) and isinstance(new, list)):
            return None
        if len(new) <= len(old) or new[: len(old)] != old:
            return None
        message.payload = payload
        if message.pk is not None:
            message.save(update_fields=["payload"])
        # The thinking the stored blocks began with, for the actions of the blocks added.
        rid = str(payload["message"].get("id") or payload.get("uuid") or "")
        if rid not in self._thinking:
            thoughts = [b.get("thinking", "") for b in old if b.get("type") == "thinking"]
            self._thinking[rid] = " ".join(thoughts).strip()
        added = payload["message"] | {"content": new[len(old) :]}
        self._on_assistant(payload | {"message": added}, message)
        return message

    # --- deriving, into the buffers ----------------------------------------------------------

    def _on_assistant(self, payload: dict[str, Any], message: Message) -> None:
        body = payload.get("message") or {}
        if body.get("model") != "<synthetic>" and not payload.get("error"):
            self.reached_model = True
        parent_id = payload.get("parent_tool_use_id") or ""
        agent_id, role, parent = self._agent_for(parent_id)
        thinking = self._thought(payload, body)
        for block in body.get("content", []):
            if block.get("type") != "tool_use":
                continue
            call_id = block["id"]
            name, given = block.get("name", ""), block.get("input") or {}
            if self.adopting and call_id in self._stored_calls:
                continue  # derived from the mirrored line by an earlier import
            self._derived += 1
            if call_id not in self._calls and call_id not in self._stored_calls:
                self._calls[call_id] = ToolCall(
                    execution=self.execution,
                    tool_use_id=call_id,
                    name=name,
                    input=given,
                    parent_tool_use_id=parent_id,
                    agent_id=agent_id,
                    requested_in=message,
                )
            action = AgentAction(
                execution=self.execution,
                agent_id=agent_id,
                role=role,
                action_type="tool_use",
                tool_name=name,
                content={"input": given},
                reasoning=thinking,
                parent=parent,
                tool_use_id=call_id,
            )
            self._add_action(action)

    def _thought(self, payload: dict[str, Any], body: dict[str, Any]) -> str:
        # One model response can arrive as several messages sharing its id: thinking first.
        response_id = str(body.get("id") or payload.get("uuid") or "")
        parts = [
            b.get("thinking", "") for b in body.get("content", []) if b.get("type") == "thinking"
        ]
        thinking = " ".join([self._thinking.get(response_id, ""), *parts]).strip()
        self._thinking[response_id] = thinking
        return thinking

    def _add_action(self, action: AgentAction) -> None:
        if action.tool_name not in SUBAGENT_TOOLS:
            self._actions.append(action)
            return
        # A delegation is saved at once, after the actions before it (ids keep their order):
        # the sub-agent's actions name it as their parent.
        self._write_actions()
        self._promote_to_coordinator(action)
        action.role = AgentRole.COORDINATOR
        action.save()
        self._delegations[action.tool_use_id] = action

    def _promote_to_coordinator(self, action: AgentAction) -> None:
        # An agent that delegates is the session's coordinator, for all its actions so far.
        if self.lazy or action.agent_id in self._stored_agents:
            self._stored_agents.discard(action.agent_id)
            super()._promote_to_coordinator(action)

    def _on_user(self, payload: dict[str, Any], message: Message) -> None:
        content = (payload.get("message") or {}).get("content")
        if not isinstance(content, list):
            return
        for block in content:
            if block.get("type") == "tool_result":
                self._answer(str(block.get("tool_use_id")), block, payload, message)

    def _answer(
        self, call_id: str, block: dict[str, Any], payload: dict[str, Any], message: Message
    ) -> None:
        call = self._calls.get(call_id)
        if self.adopting and call is None and call_id not in self._unanswered:
            return  # answered before (or never called)
        self._unanswered.discard(call_id)
        self._derived += 1
        if call is None and call_id in self._stored_calls:
            call = self._answers.setdefault(call_id, ToolCall(tool_use_id=call_id))
        if call is None:
            return  # a result for a call never seen: nothing to pair it with
        # A later result for the same id wins, as an UPDATE of each would.
        call.result = block.get("content")
        call.is_error = bool(block.get("is_error"))
        call.structured_result = payload.get("tool_use_result")
        call.answered_in = message

    def _agent_for(self, parent_tool_use_id: str) -> tuple[str, str, AgentAction | None]:
        if not parent_tool_use_id and self.unlinked_agent:
            return self.unlinked_agent, AgentRole.SPECIALIST, None
        return super()._agent_for(parent_tool_use_id)

    # --- writing -----------------------------------------------------------------------------

    def flush(self) -> None:
        """Write what is buffered: messages first (the rest point at them), in bulk."""
        messages = list(self._messages.values())
        insert_rows(Message, messages)
        self._stored |= {m.uuid: m.type for m in messages}
        if messages:  # the keys of the rows just written, for the tool calls pointing at them
            written = _written(self.execution.pk, messages[0].seq)
            for message in messages:
                message.pk = written[message.uuid]
        calls = list(self._calls.values())
        insert_rows(ToolCall, calls)
        self._stored_calls |= {c.tool_use_id for c in calls}
        self._write_answers()
        self._write_actions()
        self._messages, self._calls, self._grown = {}, {}, {}

    def _write_actions(self) -> None:
        insert_rows(AgentAction, self._actions)
        executors = {a.agent_id for a in self._actions if a.role != AgentRole.COORDINATOR}
        self._stored_agents |= executors
        self._actions = []

    def _write_answers(self) -> None:
        if not self._answers:
            return
        stored = self.execution.tool_calls.filter(tool_use_id__in=list(self._answers))
        for call_id, pk in stored.values_list("tool_use_id", "pk"):
            self._answers[call_id].pk = pk
        for call in self._answers.values():
            call.answered_in_id = call.answered_in.pk if call.answered_in else None
        fields = ["result", "is_error", "structured_result", "answered_in"]
        ToolCall.objects.bulk_update(self._answers.values(), fields, batch_size=BATCH_SIZE)
        self._answers = {}


def insert_rows(model: type[Model], objs: list[Any]) -> None:
    """INSERT unsaved rows in bulk: what `bulk_create` does, less its per-value query compiling
    (most of its time), without reading their keys back; COPY on PostgreSQL (twice as fast as
    its pipelined executemany, measured with bench/import_throughput.py)."""
    if not objs:
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    _link(fields, objs)
    values = _values(fields)
    quote = connection.ops.quote_name
    target = f"{quote(model._meta.db_table)} ({', '.join(quote(str(f.column)) for f in fields)})"
    with connection.cursor() as cursor:
        for start in range(0, len(objs), BATCH_SIZE):
            rows = [[value(obj) for value in values] for obj in objs[start : start + BATCH_SIZE]]
            if connection.vendor == "postgresql":
                with cursor.cursor.copy(f"COPY {target} FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join(["%s"] * len(fields))
                cursor.executemany(f"INSERT INTO {target} VALUES ({marks})", rows)


def _values(fields: list[Any]) -> list[Callable[[Any], Any]]:
    """Per field, how to read an object's value for the database: what `get_db_prep_save`
    gives, without its layers for the plain values most columns hold (a third of the time
    an import spent writing rows)."""
    return [_value(field, timezone.now()) for field in fields]


def _value(field: Any, now: datetime) -> Callable[[Any], Any]:
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        stamp = field.get_db_prep_save(now, connection)
        return lambda obj: stamp
    attname, prep = field.attname, field.get_db_prep_save
    if isinstance(field, JSONField) and field.encoder is None:
        return _json_value(attname, prep)
    if isinstance(field, JSONField | DateTimeField):
        return lambda obj: prep(getattr(obj, attname), connection)

    def plain(obj: Any) -> Any:
        value = getattr(obj, attname)
        return value if type(value) in PLAIN else prep(value, connection)

    return plain


def _json_value(attname: str, prep: Callable[..., Any]) -> Callable[[Any], Any]:
    """A JSON column's text made by orjson (Django's json.dumps was a sixth of an import's
    time), which SQLite stores and PostgreSQL's COPY reads as jsonb; what orjson can't write
    (keys that aren't strings, lone surrogates, huge integers) goes through Django's way."""

    def value(obj: Any) -> Any:
        data = getattr(obj, attname)
        if data is None:
            return prep(data, connection)
        try:
            return orjson.dumps(data).decode()
        except (TypeError, orjson.JSONEncodeError):
            return prep(data, connection)

    return value


def _first_line(payload: dict[str, Any], stored: dict[str, str]) -> str:
    """The stored line a merged response starts with (the mirror stores one row per line)."""
    first = payload.get("uuid")
    if payload.get("type") == "assistant" and isinstance(first, str) and first in stored:
        return first
    return ""


def _written(execution_id: int, first_seq: int) -> dict[str, int]:
    """The ids of an execution's messages from `first_seq` on, by key (plain SQL: the ORM's
    compiling cost more than the query)."""
    table = connection.ops.quote_name(Message._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT uuid, id FROM {table} WHERE execution_id = %s AND seq >= %s",
            [execution_id, first_seq],
        )
        return dict(cursor.fetchall())


def _link(fields: list[Any], objs: list[Any]) -> None:
    """Fill foreign keys to rows written after the object pointing at them was built."""
    links = [f for f in fields if f.is_relation]
    for obj in objs:
        for field in links:
            if getattr(obj, field.attname) is None:
                related = field.get_cached_value(obj, None)
                setattr(obj, field.attname, related.pk if related is not None else None)


def entry_key(entry: Entry) -> str:
    """A message's idempotency key, as `Execution.append_message` computes it."""
    payload = entry.payload
    return entry.uuid or payload.get("uuid") or _content_key(payload)


def _content_key(payload: dict[str, Any]) -> str:
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def _call_ids(payload: dict[str, Any]) -> list[str]:
    """The tool calls a payload makes (tool_use) or answers (tool_result)."""
    content = (payload.get("message") or {}).get("content")
    if not isinstance(content, list):
        return []
    ids = [b.get("id") if b.get("type") == "tool_use" else b.get("tool_use_id") for b in content]
    return [str(i) for i in ids if isinstance(i, str) and i]


def _derivable(entry: Entry) -> dict[str, Any]:
    payload = entry.payload
    if entry.structured_result is not None:
        payload = payload | {"tool_use_result": entry.structured_result}
    if entry.reasoning and isinstance(payload["message"].get("content"), list):
        message = payload["message"]
        thought = {"type": "thinking", "thinking": entry.reasoning}
        payload = payload | {"message": message | {"content": [thought, *message["content"]]}}
    return payload
