"""A trajectory as people read it: threads of turns, each turn a model response whose steps
(the stored assistant messages) hold text, thinking and tool cards; sub-agent threads hang
under the Task/Agent card that started them.

    trajectory = build_trajectory(execution, example=example)

Four queries whatever the session's length: messages without their payloads, the payloads
worth reading (not those of tool results: the tool calls carry them), tool calls without their
structured results, and the example's step marks. Tool outputs are cut to previews here; the
rest is loaded on demand (`collection-tool-output`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.db.models.fields.json import KT
from django.urls import reverse
from django.utils.dateparse import parse_datetime

from collection.importers.pricing import estimate_cost
from collection.models import Execution, Message, Source, StepMark, ToolCall, TrainingExample
from collection.viewer.cards import card_for
from collection.viewer.render import markdown_html, preview, result_text
from collection.viewer.tree import (
    PROMPT_CHARS,
    AuxLine,
    Block,
    Note,
    Step,
    Thread,
    ToolCard,
    Trajectory,
    Turn,
    Usage,
    short,
)

# Message types that are bookkeeping (hooks, file snapshots, the input queue): listed, not read.
AUX_TYPES = {"progress", "file-history-snapshot", "queue-operation", "summary"}
STAND_IN = 987654321


# --- loading -------------------------------------------------------------------------------


@dataclass
class _Row:
    pk: int
    seq: int
    type: str
    subtype: str
    parent: str
    at: datetime | None
    payload: dict[str, Any] | None = None
    answers: bool = False  # holds tool results, which the cards show


def build_trajectory(execution: Execution, *, example: TrainingExample | None = None) -> Trajectory:
    """The execution's trajectory, ready for `_trajectory.html`."""
    calls = {c.tool_use_id: c for c in _calls(execution)}
    rows = _rows(execution, {c.answered_in_id for c in calls.values()})
    marks = _marks(example)
    builder = _Builder(rows, calls, marks)
    trajectory = Trajectory(execution, builder.thread(""), messages=len(rows))
    _add_prompt(trajectory.thread, execution)
    trajectory.init_line = builder.init_line
    trajectory.result_subtype = builder.result_subtype
    _number_anchors(trajectory, builder.cards)
    _link(trajectory.thread, _Urls(execution.pk))
    return trajectory


def _add_prompt(thread: Thread, execution: Execution) -> None:
    """Live sessions send the prompt through query(), not as a stored message: show the one
    the collector kept before the first turn, unless a stored message already says it."""
    metadata = execution.metadata if isinstance(execution.metadata, dict) else {}
    prompt = str(metadata.get("prompt") or "")
    if not prompt.strip() or any(isinstance(i, Note) and i.kind == "prompt" for i in thread.items):
        return
    head = ("init", "aux")
    at = next(
        (n for n, i in enumerate(thread.items) if not (isinstance(i, Note) and i.kind in head)),
        len(thread.items),
    )
    html = markdown_html(prompt[:PROMPT_CHARS])
    thread.items.insert(at, Note("prompt", None, 0, text=prompt, html=html))


class _Urls:
    """The on-demand URLs, reversed once per page rather than once per message."""

    def __init__(self, execution_pk: int) -> None:
        self.raw = _url_maker("collection-message-raw", execution_pk)
        self.output = _url_maker("collection-tool-output", execution_pk)


def _url_maker(name: str, execution_pk: int) -> Callable[[int], str]:
    # The object's pk is the pattern's last argument: reverse with a stand-in, then fill it.
    head, tail = reverse(name, args=[execution_pk, STAND_IN]).rsplit(str(STAND_IN), 1)
    return lambda pk: f"{head}{pk}{tail}"


def _link(thread: Thread, urls: _Urls) -> None:
    for item in thread.items:
        if isinstance(item, Note):
            item.raw_url = urls.raw(item.message_id) if item.message_id else ""
            for line in item.aux:
                line.raw_url = urls.raw(line.pk)
            if item.thread:
                _link(item.thread, urls)
            continue
        for step in item.steps:
            step.raw_url = urls.raw(step.message_id)
            for card in (block.card for block in step.blocks if block.card):
                card.output_url = urls.output(card.pk) if card.pk else ""
                card.answer_raw_url = urls.raw(card.answered_in) if card.answered_in else ""
                if card.subagent:
                    _link(card.subagent, urls)


def _rows(execution: Execution, answers: set[int | None]) -> list[_Row]:
    meta = execution.messages.annotate(ts=KT("payload__timestamp")).values_list(
        "pk", "seq", "type", "subtype", "parent_tool_use_id", "ts", "created_at"
    )
    use_created = execution.source != Source.IMPORTED  # imports are stored long after
    rows = {
        pk: _Row(pk, seq, kind, sub, parent, _when(ts) or (created if use_created else None))
        for pk, seq, kind, sub, parent, ts, created in meta
    }
    for pk, payload in _payloads(execution):
        if pk in rows:
            rows[pk].payload = payload if isinstance(payload, dict) else {}
    for answer in answers:
        if answer in rows:
            rows[answer].answers = True
    return sorted(rows.values(), key=lambda row: row.seq)


def _payloads(execution: Execution) -> QuerySet[Message, tuple[int, Any]]:
    # Tool results are read from their tool calls; bookkeeping lines are only listed.
    answered = ToolCall.objects.filter(execution=execution, answered_in__isnull=False)
    return (
        execution.messages.exclude(type__in=AUX_TYPES)
        .exclude(pk__in=answered.values("answered_in"))
        .values_list("pk", "payload")
    )


def _calls(execution: Execution) -> QuerySet[ToolCall]:
    return execution.tool_calls.defer("structured_result")


class _Builder:
    """Walks each thread's rows once, in order, building its items and cards."""

    def __init__(
        self, rows: list[_Row], calls: dict[str, ToolCall], marks: dict[int, StepMark]
    ) -> None:
        self.calls, self.marks = calls, marks
        self.at = {row.pk: row.at for row in rows}
        self.before: dict[int, datetime | None] = {}  # the last time seen before each row
        self.by_parent: dict[str, list[_Row]] = defaultdict(list)
        latest: datetime | None = None
        for row in rows:
            self.before[row.pk] = latest
            latest = row.at or latest
            self.by_parent[row.parent].append(row)
        self.built: set[str] = set()
        self.cards: list[ToolCard] = []  # in page order
        self.init_line = ""
        self.result_subtype = ""

    def thread(self, parent: str) -> Thread:
        """The messages whose parent_tool_use_id is `parent` ("" for the main agent)."""
        self.built.add(parent)
        thread = Thread()
        for row in self.by_parent.get(parent, []):
            self._add(thread, row)
        if parent == "":  # sub-agents whose Task call was never stored
            for orphan in [p for p in self.by_parent if p not in self.built]:
                sub = self.thread(orphan)
                thread.items.append(Note("subagent", None, 0, text=orphan, thread=sub))
        _total(thread)
        return thread

    def _add(self, thread: Thread, row: _Row) -> None:
        payload = row.payload
        if row.answers:
            return
        if payload is None or row.type in AUX_TYPES or payload.get("isMeta"):
            _aux(thread, row)
        elif row.type == "assistant":
            self._assistant(thread, row, payload)
        elif row.type == "user":
            self._user(thread, row, payload)
        elif row.type == "system":
            self._system(thread, row, payload)
        elif row.type == "result":
            self._result(thread, row, payload)
        else:
            _aux(thread, row)

    def _assistant(self, thread: Thread, row: _Row, payload: dict[str, Any]) -> None:
        body = _dict(payload.get("message"))
        turn = self._turn(thread, row, str(body.get("id") or f"message-{row.pk}"))
        turn.model = str(body.get("model") or turn.model)
        if body.get("usage"):  # the CLI repeats the usage so far on each part of a response
            turn.usage = Usage.of(_dict(body["usage"]))
        _cost(turn, payload)
        blocks = self._blocks(body.get("content"), turn)
        if not body:  # not the SDK's shape: show what it holds rather than nothing
            blocks = [Block("other", text=short(payload, 600))]
        step = Step(row.pk, row.seq, blocks)
        step.mark = self.marks.get(row.pk)
        turn.steps.append(step)
        turn.ended = _latest(turn.ended, row.at)

    def _turn(self, thread: Thread, row: _Row, response_id: str) -> Turn:
        """The turn this part of a response belongs to: the open one, or a new one."""
        last = thread.items[-1] if thread.items else None
        if isinstance(last, Turn) and last.response_id == response_id:
            return last
        number = sum(1 for item in thread.items if isinstance(item, Turn)) + 1
        turn = Turn(number, response_id, started=self.before.get(row.pk))
        thread.items.append(turn)
        return turn

    def _blocks(self, content: Any, turn: Turn) -> list[Block]:
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        blocks: list[Block] = []
        for block in [_dict(b) for b in content] if isinstance(content, list) else []:
            kind = block.get("type")
            if kind == "text" and str(block.get("text") or "").strip():
                blocks.append(Block("text", html=markdown_html(str(block["text"]))))
            elif kind in ("thinking", "redacted_thinking"):
                text = str(block.get("thinking") or "[redacted thinking]")
                blocks.append(Block("thinking", text=text))
            elif kind == "tool_use":
                blocks.append(Block("tool", card=self._card(block, turn)))
            elif kind and kind != "text":
                blocks.append(Block("other", text=f"{kind}: {short(block, 300)}"))
        return blocks

    def _card(self, block: dict[str, Any], turn: Turn) -> ToolCard:
        tool_use_id = str(block.get("id") or "")
        call = self.calls.get(tool_use_id)
        card = card_for(tool_use_id, str(block.get("name") or ""), _dict(block.get("input")), call)
        self.cards.append(card)
        if call is not None and call.answered_in_id is not None:
            turn.ended = _latest(turn.ended, self.at.get(call.answered_in_id))
        if tool_use_id and tool_use_id in self.by_parent and tool_use_id not in self.built:
            card.subagent = self.thread(tool_use_id)
        return card

    def _user(self, thread: Thread, row: _Row, payload: dict[str, Any]) -> None:
        content = _dict(payload.get("message")).get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        blocks = [_dict(b) for b in content] if isinstance(content, list) else []
        text = "\n\n".join(str(b.get("text") or "") for b in blocks if b.get("type") == "text")
        results = [b for b in blocks if b.get("type") == "tool_result"]
        if text.strip():
            html = markdown_html(text[:PROMPT_CHARS])
            thread.items.append(Note("prompt", row.pk, row.seq, text=text, html=html))
        for block in results:  # results whose call was not stored
            output = preview(result_text(block.get("content")))
            thread.items.append(Note("orphan", row.pk, row.seq, output=output))
        if not text.strip() and not results:
            _aux(thread, row)

    def _system(self, thread: Thread, row: _Row, payload: dict[str, Any]) -> None:
        if row.subtype == "init":
            tools = payload.get("tools")
            count = len(tools) if isinstance(tools, list) else 0
            line = f"{payload.get('model') or '?'} · {count} tools · {payload.get('cwd') or '?'}"
            self.init_line = self.init_line or line
            thread.items.append(Note("init", row.pk, row.seq, text=line))
            return
        said = payload.get("content") or payload.get("message") or ""
        if not said:  # thinking_tokens, task_progress...: the CLI's bookkeeping, nothing to read
            _aux(thread, row)
            return
        text = " · ".join(part for part in (row.subtype, short(said, 300)) if part)
        thread.items.append(Note("system", row.pk, row.seq, text=text))

    def _result(self, thread: Thread, row: _Row, payload: dict[str, Any]) -> None:
        self.result_subtype = self.result_subtype or row.subtype or "result"
        parts = [row.subtype or "result", f"{_int(payload.get('num_turns'))} turns"]
        if isinstance(payload.get("total_cost_usd"), int | float):
            parts.append(f"${payload['total_cost_usd']:.4f}")
        if _int(payload.get("duration_ms")):
            parts.append(f"{payload['duration_ms'] / 1000:.1f} s")
        if payload.get("is_error"):
            parts.append("error")
        thread.items.append(Note("result", row.pk, row.seq, text=" · ".join(parts)))


def _cost(turn: Turn, payload: dict[str, Any]) -> None:
    """The response's cost: as the transcript states it, else estimated from its usage."""
    stated = payload.get("costUSD")
    if isinstance(stated, int | float) and not isinstance(stated, bool):
        turn.cost, turn.cost_estimated = float(stated), False
        return
    usage = _dict(_dict(payload.get("message")).get("usage"))
    guess = estimate_cost(turn.model, usage) if usage else None
    if guess is not None:
        turn.cost, turn.cost_estimated = guess, True


def _total(thread: Thread) -> None:
    for item in thread.items:
        if isinstance(item, Turn):
            thread.turns += 1
            thread.usage.add(item.usage)
            thread.cost += item.cost or 0.0


def _aux(thread: Thread, row: _Row) -> None:
    """Bookkeeping lines: consecutive ones share one collapsed line."""
    last = thread.items[-1] if thread.items else None
    if not (isinstance(last, Note) and last.kind == "aux"):
        last = Note("aux", row.pk, row.seq)
        thread.items.append(last)
    last.aux.append(
        AuxLine(row.pk, row.seq, f"{row.type}/{row.subtype}" if row.subtype else row.type)
    )


def _number_anchors(trajectory: Trajectory, cards: list[ToolCard]) -> None:
    """Anchors for the jump links: each error card links to the next error, each sub-agent
    to the next sub-agent."""
    errors = [c for c in cards if c.is_error]
    subagents = [c for c in cards if c.subagent is not None]
    for n, card in enumerate(errors, 1):
        card.error_anchor = f"error-{n}"
        card.next_error = f"error-{n + 1}" if n < len(errors) else ""
    for n, card in enumerate(subagents, 1):
        card.subagent_anchor = f"subagent-{n}"
        card.next_subagent = f"subagent-{n + 1}" if n < len(subagents) else ""
    trajectory.tool_calls, trajectory.tool_errors = len(cards), len(errors)
    trajectory.subagents = len(subagents)
    trajectory.first_error = errors[0].error_anchor if errors else ""
    trajectory.first_subagent = subagents[0].subagent_anchor if subagents else ""


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return max(a, b)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _marks(example: TrainingExample | None) -> dict[int, StepMark]:
    if example is None:
        return {}
    return {m.message_id: m for m in example.step_marks.all()}


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_datetime(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
