"""TRL's stepwise-supervision dataset type, for training process reward models on agent steps.

    fmt = FORMATS["stepwise"]
    rows = fmt.rows(records, options)   # {"prompt": str, "completions": [str], "labels": [bool]}

TRL defines the type in its "Dataset formats" guide (standard format only: `prompt` a string,
`completions` one string per step, `labels` one bool per step) and `PRMTrainer` reads it,
joining the prompt and the completions with its step separator and scoring each step at its end.
`StepwiseRow` below is that schema; every row is validated against it.

A step is one assistant response, rendered as text: the user's words since the last step (if
any), the thinking (with include_thinking) in <thinking>, the text, each tool call as
<tool_call>{"name": ..., "arguments": ...}</tool_call> and its whole output in
<tool_response> (<tool_error> when the call failed) — the observation belongs to the step, so a
reward model judges an action with what it led to.

Labels, from the reviewer's bad-step marks and the verifier's outcome — True only with evidence:
- a step marked bad -> False;
- an unmarked step of a verified success -> True;
- in a session that did not verifiably succeed (failed, or no verdict: sub-agents and imports
  without a verifier), with marks: unmarked steps before the first bad mark -> True (the reviewer
  read up to there and placed the first error there), unmarked steps after it -> False (the
  session never recovered);
- such a session without any mark is left out ("no step labels"): the outcome says something
  went wrong but not where, and labelling every step False would teach that sound steps are bad.
Records without steps are left out too. Left-out records are counted in `left_out` when the
caller passes a Counter.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from exports.formats.base import Format, json_text
from exports.options import ExportOptions
from exports.records import Record, Step, ToolCallRecord

NO_LABELS = "no step labels (unverified, unmarked)"
NO_STEPS = "no steps"


class StepwiseRow(BaseModel):
    """TRL's stepwise-supervision type (standard format), plus our `id` (trainers drop extra
    columns)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: str
    prompt: str = Field(min_length=1)
    completions: list[str] = Field(min_length=1)
    labels: list[bool] = Field(min_length=1)

    @field_validator("completions")
    @classmethod
    def _no_empty_step(cls, value: list[str]) -> list[str]:
        if any(not text.strip() for text in value):
            raise ValueError("a completion is empty")
        return value

    @model_validator(mode="after")
    def _one_label_per_step(self) -> StepwiseRow:
        if len(self.labels) != len(self.completions):
            raise ValueError("labels and completions differ in length")
        return self


class StepwiseFormat(Format):
    name = "stepwise"
    title = "Stepwise supervision (TRL, process reward)"
    filename = "data.jsonl"

    def rows(
        self,
        records: Iterable[Record],
        options: ExportOptions,
        left_out: Counter[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        counts: Counter[str] = left_out if left_out is not None else Counter()
        for record in records:
            steps = [step for step in record.steps if _rendered(step)]
            labels = step_labels(steps, record.success)
            if not steps or labels is None:
                counts[NO_STEPS if not steps else NO_LABELS] += 1
                continue
            completions = [_rendered(step) for step in steps]
            yield {
                "id": record.id,
                "prompt": record.prompt,
                "completions": completions,
                "labels": labels,
            }

    def validate(self, row: dict[str, Any]) -> list[str]:
        try:
            StepwiseRow.model_validate(row)
        except ValidationError as error:
            return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()]
        return []


def step_labels(steps: list[Step], success: bool | None) -> list[bool] | None:
    """One label per step by the rule above; None when there is no evidence to label with."""
    if success is True:
        return [not step.bad for step in steps]
    first_bad = next((n for n, step in enumerate(steps) if step.bad), None)
    if first_bad is None:
        return None
    return [n < first_bad for n in range(len(steps))]


def _rendered(step: Step) -> str:
    parts = []
    if step.user_text:
        parts.append(f"<user>{step.user_text}</user>")
    if step.thinking:
        parts.append(f"<thinking>{step.thinking}</thinking>")
    if step.text:
        parts.append(step.text)
    parts += [_call(call) for call in step.tool_calls]
    return "\n".join(parts)


def _call(call: ToolCallRecord) -> str:
    text = f"<tool_call>{json_text({'name': call.name, 'arguments': call.arguments})}</tool_call>"
    if not call.answered:
        return text
    tag = "tool_error" if call.is_error else "tool_response"
    return f"{text}\n<{tag}>{call.output}</{tag}>"
