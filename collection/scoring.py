"""Quality scoring: the seed's weighted default, custom scorers, golden flags and rescoring.

A scorer is any callable taking a `TaskExecution` record and returning a float in [0, 1].
The default weighs success 40%, efficiency 30%, cost 20% and tool usage 10%; an example at or
above the golden threshold (0.8) is golden. Weights, budgets and thresholds live in
`settings.TRAININGDASH_SCORING`; `settings.TRAININGDASH_QUALITY_SCORER` may name a custom
scorer by dotted path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from collection.models import TrainingExample
from collection.schema import TaskExecution

Scorer = Callable[[TaskExecution], float]


class ScoringError(Exception):
    """A scorer is misconfigured or returned something that is not a score. Retrying won't help."""


class DefaultQualityScorer:
    """success 40%, efficiency 30%, cost 20%, tool usage 10% (weights from settings)."""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = config or settings.TRAININGDASH_SCORING

    def components(self, execution: TaskExecution) -> dict[str, float]:
        return {
            "success": 1.0 if execution.success else 0.0,
            "efficiency": self._efficiency(execution),
            "cost": self._cost(execution),
            "tool_usage": self._tool_usage(execution),
        }

    def __call__(self, execution: TaskExecution) -> float:
        weights = self.config["weights"]
        parts = self.components(execution)
        return round(sum(weights[name] * value for name, value in parts.items()), 4)

    def _efficiency(self, execution: TaskExecution) -> float:
        budget = self.config["turn_budget"][execution.task.difficulty]
        return 1.0 if execution.num_turns <= budget else budget / execution.num_turns

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
    return quality_score >= settings.TRAININGDASH_SCORING["golden_threshold"]


def apply_score(example: TrainingExample, scorer: Scorer | str | None = None) -> TrainingExample:
    """Score an example's execution and set its golden flag, unless a reviewer has ruled on it.

    Whether a reviewer has ruled is decided by the UPDATE, from the row as it is now, not from
    `example` as it was read: a ruling made while a rescore runs is never overturned.
    Returns the example as stored.
    """
    record = TaskExecution.from_execution(example.execution)
    quality = score(record, scorer)
    rows = TrainingExample.objects.filter(pk=example.pk)
    with transaction.atomic():
        rows.update(quality_score=quality, updated_at=timezone.now())
        rows.filter(reviewed_at__isnull=True).update(is_golden=is_golden(quality))
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
