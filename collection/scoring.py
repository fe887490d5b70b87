"""Quality scoring: the seed's weighted default, custom scorers, golden flags and rescoring.

A scorer is any callable taking a `TaskExecution` record and returning a float in [0, 1]:

    def custom_scorer(execution: TaskExecution) -> float:
        return 1.0 if execution.success and execution.cost_usd < 0.05 else 0.3

The default weighs success 40%, efficiency 30%, cost 20% and tool usage 10%, with rules so
that a score tells a hard verified fix from a trivial or unverified session:

- The success share is earned by a verified success only (`success` True). A failed session
  and one whose success is unknown (`success` None: an imported session without a result or a
  verdict) both get 0 for it; an unknown one therefore scores at most 0.6.
- Tool usage is 0 when the task requires tools and none were used.
- A trivial session, one that used no tool (no tool call, no action naming a tool) and whose
  answer (`outcome`) is shorter than `trivial_answer_chars` (200) characters, is capped at
  `trivial_cap` (0.5) whatever its turns and cost: a one-turn "4" is not a golden example.

Golden, decided by `apply_score` whatever the scorer: a score at or above the golden threshold
(0.8) makes an example golden only if its execution's success is verified (`success` True); an
unknown or failed session is never golden by score alone. A reviewer's ruling (`reviewed_at`
set) always wins: neither scoring nor rescoring overturns it. Nor a reviewer's quality
override: while set it is the example's `quality_score`; `scored_quality` keeps the scorer's.

Weights, budgets and thresholds live in `settings.TRAININGDASH_SCORING`;
`settings.TRAININGDASH_QUALITY_SCORER` may name a custom scorer by dotted path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, FloatField, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.module_loading import import_string

from collection.models import TrainingExample
from collection.schema import TaskExecution

Scorer = Callable[[TaskExecution], float]


class ScoringError(Exception):
    """A scorer is misconfigured or returned something that is not a score. Retrying won't help."""


# A session with no tool use and an answer shorter than this is trivial, and capped.
TRIVIAL_ANSWER_CHARS = 200
TRIVIAL_CAP = 0.5


class DefaultQualityScorer:
    """success 40%, efficiency 30%, cost 20%, tool usage 10% (weights from settings); only a
    verified success earns its share, and a trivial session (no tools, short answer) is capped."""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = config or settings.TRAININGDASH_SCORING

    def components(self, execution: TaskExecution) -> dict[str, float]:
        return {
            "success": 1.0 if execution.success is True else 0.0,
            "efficiency": self._efficiency(execution),
            "cost": self._cost(execution),
            "tool_usage": self._tool_usage(execution),
        }

    def __call__(self, execution: TaskExecution) -> float:
        weights = self.config["weights"]
        parts = self.components(execution)
        total = sum(weights[name] * value for name, value in parts.items())
        if self.is_trivial(execution):
            total = min(total, self.config.get("trivial_cap", TRIVIAL_CAP))
        return round(total, 4)

    def is_trivial(self, execution: TaskExecution) -> bool:
        """No tool used and a short answer: a session that shows nothing worth learning."""
        shortest = self.config.get("trivial_answer_chars", TRIVIAL_ANSWER_CHARS)
        used_tools = execution.tool_calls or any(a.tool_name for a in execution.actions)
        return not used_tools and len(execution.outcome.strip()) < shortest

    def _efficiency(self, execution: TaskExecution) -> float:
        """Full marks up to the turn budget (an efficient solve), none at `turn_overrun` times
        it: a fix found after a long detour is not the trajectory to learn from."""
        budget = self.config["turn_budget"][execution.task.difficulty]
        overrun = self.config.get("turn_overrun", 1.5)
        over = (execution.num_turns - budget) / (budget * (overrun - 1))
        return round(min(1.0, max(0.0, 1.0 - over)), 4)

    def _cost(self, execution: TaskExecution) -> float:
        budget = self.config["cost_budget_usd"][execution.task.difficulty]
        return 1.0 if execution.cost_usd <= budget else budget / execution.cost_usd

    def _tool_usage(self, execution: TaskExecution) -> float:
        required = set(execution.task.required_tools)
        calls = execution.tool_calls
        if not calls:
            return 0.0 if required else 1.0
        ok_rate = sum(1 for call in calls if not call.is_error) / len(calls)
        coverage = len(required & {call.name for call in calls}) / len(required) if required else 1
        return (ok_rate + coverage) / 2


def get_scorer(scorer: Scorer | str | None = None) -> Scorer:
    """A callable scorer from a callable, a dotted path, the configured one, or the default."""
    if callable(scorer):
        return scorer
    path = scorer or settings.TRAININGDASH_QUALITY_SCORER
    if not path:
        return DefaultQualityScorer()
    try:
        found = import_string(path)
    except ImportError as exc:
        raise ScoringError(f"quality scorer {path!r} cannot be imported: {exc}") from exc
    if not callable(found):
        raise ScoringError(f"quality scorer {path!r} is not callable")
    return found


def score(execution: TaskExecution, scorer: Scorer | str | None = None) -> float:
    """Run a scorer and check that what it returned is a score."""
    fn = get_scorer(scorer)
    value = fn(execution)
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ScoringError(f"scorer {_name(fn)} returned {value!r}, not a number")
    if not 0.0 <= value <= 1.0:
        raise ScoringError(f"scorer {_name(fn)} returned {value}, outside 0..1")
    return float(value)


def is_golden(quality_score: float) -> bool:
    """Whether a score reaches the golden threshold (see `earns_golden` for the whole rule)."""
    return quality_score >= settings.TRAININGDASH_SCORING["golden_threshold"]


def earns_golden(quality_score: float, success: bool | None) -> bool:
    """Golden by score alone: at the threshold, and only for a verified success."""
    return success is True and is_golden(quality_score)


def apply_score(example: TrainingExample, scorer: Scorer | str | None = None) -> TrainingExample:
    """Score an example's execution, keep what the scorer said in `scored_quality`, and set its
    golden flag (`earns_golden`: the threshold and a verified success), unless a reviewer has
    ruled on it.

    A reviewer's `quality_override`, while set, stays the example's `quality_score`.
    Whether a reviewer has ruled or overridden is decided by the UPDATE, from the row as it is
    now, not from `example` as it was read: a ruling made while a rescore runs is never
    overturned. Returns the example as stored.
    """
    record = TaskExecution.from_execution(example.execution)
    quality = score(record, scorer)
    rows = TrainingExample.objects.filter(pk=example.pk)
    effective = Coalesce(F("quality_override"), Value(quality), output_field=FloatField())
    with transaction.atomic():
        rows.update(quality_score=effective, scored_quality=quality, updated_at=timezone.now())
        rows.filter(reviewed_at__isnull=True).update(
            is_golden=earns_golden(quality, record.success)
        )
    example.refresh_from_db()
    return example


def rescore(examples: Iterable[TrainingExample], scorer: Scorer | str | None = None) -> int:
    """Rescore stored examples with one scorer; returns how many were rescored.

    All or nothing: a scorer that fails on one example leaves every stored score as it was.
    """
    fn = get_scorer(scorer)
    count = 0
    with transaction.atomic():
        for example in examples:
            apply_score(example, fn)
            count += 1
    return count


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", type(fn).__name__)
