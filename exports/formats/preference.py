"""Preference pairs for DPO and friends, in TRL's conversational preference type.

    fmt = FORMATS["preference"]
    rows = fmt.rows(records, options)  # {"prompt": [...], "chosen": [...], "rejected": [...]}

A row (TRL's "Dataset formats" guide, preference type, conversational, explicit prompt):
`prompt` = the system prompt (if any) and the user's prompt as messages; `chosen` and
`rejected` = the two attempts' turns after it: assistant messages (`content`, `tool_calls` as
`{"type": "function", "function": {"name", "arguments": {...}}}`, `thinking` with
include_thinking) and `tool` messages with each call's whole output; `tools` = the JSON schemas
of the tools either attempt used; plus our ids. `PreferenceRow` below is that schema; every row
is validated against it.

Pairing rule, per task (same task name, description, category and template, and the same
prompt: a pair must answer one prompt):
- chosen: a verified success (the verifier said yes), best first: golden, then validated, then
  higher quality score, then the older example;
- rejected: a failed attempt (the verifier said no), the lowest quality score first. A success
  that merely scored lower is never rejected: it still solved the task, and teaching the model
  to avoid it would be noise;
- the i-th best success pairs with the i-th failure, so each example is in at most one pair;
  what is left over on the longer side is left out ("no counterpart"). With `reuse_examples`
  the shorter side is reused round-robin instead, so every attempt is in a pair;
- a task with successes but no failure (or failures but no success) makes no pair: its
  attempts are left out ("no failed attempt" / "no verified success"), as are attempts without
  a verdict ("unverified") and without steps ("no steps"). Sub-agent conversations are not
  attempts of a task and are skipped.
Left-out examples are counted in `left_out` when the caller passes a Counter (and a pair whose
example was deleted or marked a duplicate between the two passes below, as "changed during the
export").

Memory: pairing needs all attempts of a task, and records arrive in primary-key order, not by
task. So a first pass over the records keeps one small summary per example (its id, verdict,
golden, validated and score, under a digest of its task and prompt), never the record; then,
one task at a time, the paired examples are loaded again with `load_records` and their rows
written. At most one task's pairs are in memory at once; what grows with the example count is
the summaries (a slotted dataclass of five fields each), not records.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from collection.models import TrainingExample
from exports.formats.base import Format, json_text
from exports.options import ExportOptions
from exports.records import Record, Step, load_records

NO_FAILURE = "no failed attempt"
NO_SUCCESS = "no verified success"
NO_COUNTERPART = "no counterpart"
UNVERIFIED = "unverified"
NO_STEPS = "no steps"
GONE = "changed during the export"


# --- TRL's conversational preference type ----------------------------------------------------


class Function(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    arguments: dict[str, Any]


class ToolCallMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    type: Literal["function"]
    function: Function


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    thinking: str | None = None
    tool_calls: list[ToolCallMessage] | None = None
    name: str | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> Message:
        if self.role == "assistant" and not (self.content or self.tool_calls):
            raise ValueError("an assistant message says something or calls a tool")
        if self.role != "assistant" and (self.content is None or self.tool_calls is not None):
            raise ValueError(f"a {self.role} message has content and no tool_calls")
        if self.role == "tool" and not (self.name and self.tool_call_id):
            raise ValueError("a tool message names its tool and call")
        return self


class ToolDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["function"]
    function: dict[str, Any]


class PreferenceRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    chosen_id: str
    rejected_id: str
    prompt: list[Message] = Field(min_length=1)
    chosen: list[Message] = Field(min_length=1)
    rejected: list[Message] = Field(min_length=1)
    tools: list[ToolDefinition]

    @model_validator(mode="after")
    def _turns(self) -> PreferenceRow:
        if self.prompt[-1].role != "user" or any(
            m.role not in ("system", "user") for m in self.prompt
        ):
            raise ValueError("the prompt is system/user messages ending with the user's")
        for side in (self.chosen, self.rejected):
            if side[0].role != "assistant" or any(m.role == "system" for m in side):
                raise ValueError("an attempt starts with the assistant and has no system turn")
            _check_answers(side)
        return self


def _check_answers(messages: list[Message]) -> None:
    """Each tool message answers a call of the assistant message before it; every call is."""
    open_calls: set[str] = set()
    for message in messages:
        if message.role == "tool":
            if message.tool_call_id not in open_calls:
                raise ValueError(f"tool message for unknown call {message.tool_call_id!r}")
            open_calls.discard(message.tool_call_id or "")
            continue
        if open_calls:
            raise ValueError(f"calls never answered: {sorted(open_calls)}")
        open_calls = {call.id for call in message.tool_calls or []}
    if open_calls:
        raise ValueError(f"calls never answered: {sorted(open_calls)}")


# --- the format ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Attempt:
    example_id: int
    success: bool | None
    golden: bool
    validated: bool
    quality: float


class PreferenceFormat(Format):
    name = "preference"
    title = "Preference pairs (TRL DPO)"
    filename = "data.jsonl"

    def rows(
        self,
        records: Iterable[Record],
        options: ExportOptions,
        left_out: Counter[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        counts: Counter[str] = left_out if left_out is not None else Counter()
        groups = _attempts_by_task(records, counts)
        for group in sorted(groups.values(), key=lambda attempts: attempts[0].example_id):
            pairs = pair_attempts(group, options.reuse_examples, counts)
            if pairs:
                yield from _pair_rows(pairs, options, counts)

    def validate(self, row: dict[str, Any]) -> list[str]:
        try:
            PreferenceRow.model_validate(row)
        except ValidationError as error:
            return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()]
        return []


def _attempts_by_task(records: Iterable[Record], counts: Counter[str]) -> dict[str, list[_Attempt]]:
    """First pass: a summary per usable example, grouped by task and prompt, in pk order."""
    groups: dict[str, list[_Attempt]] = defaultdict(list)
    for record in records:
        if record.parent_id is not None:
            continue
        if not record.steps:
            counts[NO_STEPS] += 1
        elif record.success is None:
            counts[UNVERIFIED] += 1
        else:
            attempt = _Attempt(
                record.example_id, record.success, record.golden, record.validated, record.quality
            )
            groups[_task_key(record)].append(attempt)
    return groups


def _task_key(record: Record) -> str:
    task = record.task
    identity = [task.name, task.description, task.category, task.template, record.prompt]
    return hashlib.sha256(json_text(identity).encode()).hexdigest()


def pair_attempts(
    attempts: list[_Attempt], reuse: bool, counts: Counter[str]
) -> list[tuple[int, int]]:
    """(chosen, rejected) example ids for one task's attempts, by the rule above."""
    successes = sorted(
        (a for a in attempts if a.success),
        key=lambda a: (not a.golden, not a.validated, -a.quality, a.example_id),
    )
    failures = sorted(
        (a for a in attempts if not a.success), key=lambda a: (a.quality, a.example_id)
    )
    if not failures or not successes:
        counts[NO_FAILURE if successes else NO_SUCCESS] += len(attempts)
        return []
    chosen, rejected = [a.example_id for a in successes], [a.example_id for a in failures]
    if reuse:
        size = max(len(chosen), len(rejected))
        return [(chosen[n % len(chosen)], rejected[n % len(rejected)]) for n in range(size)]
    counts[NO_COUNTERPART] += abs(len(chosen) - len(rejected))
    return list(zip(chosen, rejected, strict=False))


def _pair_rows(
    pairs: list[tuple[int, int]], options: ExportOptions, counts: Counter[str]
) -> Iterator[dict[str, Any]]:
    """Second pass for one task: load its paired examples' records and build the rows."""
    ids = {example_id for pair in pairs for example_id in pair}
    # The coordinator's conversation is the attempt; sub-agents' turns are not in it.
    coordinators = options.model_copy(update={"subagents": "coordinator_only"})
    examples = TrainingExample.objects.filter(pk__in=ids)
    loaded = {r.example_id: r for r in load_records(examples, coordinators)}
    for chosen_id, rejected_id in pairs:
        chosen, rejected = loaded.get(chosen_id), loaded.get(rejected_id)
        if chosen is None or rejected is None:  # deleted or marked duplicate since pass one
            counts[GONE] += 1
            continue
        yield _row(chosen, rejected)


def _row(chosen: Record, rejected: Record) -> dict[str, Any]:
    tools = {tool["name"]: tool for tool in chosen.tools + rejected.tools}
    return {
        "id": f"pair-{chosen.example_id}-{rejected.example_id}",
        "chosen_id": chosen.id,
        "rejected_id": rejected.id,
        "prompt": _prompt(chosen),
        "chosen": _turns(chosen.steps),
        "rejected": _turns(rejected.steps),
        "tools": [{"type": "function", "function": tools[name]} for name in sorted(tools)],
    }


def _prompt(record: Record) -> list[dict[str, Any]]:
    system = [{"role": "system", "content": record.system}] if record.system else []
    return system + [{"role": "user", "content": record.prompt}]


def _turns(steps: list[Step]) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for step in steps:
        if step.user_text:
            turns.append({"role": "user", "content": step.user_text})
        turns += _step_turns(step)
    return turns


def _step_turns(step: Step) -> list[dict[str, Any]]:
    assistant: dict[str, Any] = {"role": "assistant"}
    if step.text:
        assistant["content"] = step.text
    if step.thinking:
        assistant["thinking"] = step.thinking
    if step.tool_calls:
        assistant["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in step.tool_calls
        ]
    if "content" not in assistant and "tool_calls" not in assistant:
        return []  # thinking alone is not a turn a trainer can learn from
    results = [
        {"role": "tool", "name": c.name, "tool_call_id": c.id, "content": c.output}
        for c in step.tool_calls
        if c.answered
    ]
    return [assistant, *results]
