"""Train / validation / test splits, seeded and grouped by task.

    plan = split_tasks(examples, ExportOptions(seed=3))
    plan["validation"]          # the task ids whose examples go to validation, ascending

The rule:
1. The unit is the task: every example of a task goes to the same split, so a model is never
   evaluated on a task it was trained on (many examples are attempts at the same task).
2. Each task weighs as many examples as the export will write of it (duplicates and non-golden
   examples left out when the options say so).
3. The tasks are put in ascending id order, shuffled with `random.Random(seed)`, then sorted by
   weight, heaviest first (a stable sort, so equal weights keep the seeded order).
4. In that order each task goes to the split furthest below its share of the examples
   (`ratio * total - already there`); ties go to the earlier split (train, validation, test).
   Placing the heavy tasks first and filling the largest gap keeps every split as close to
   its share as whole tasks allow; a split with a share of 0 gets no task that carries examples.

The same examples and seed always give the same plan; another seed gives another shuffle.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from django.db.models import Count, QuerySet

from collection.models import TrainingExample
from exports.options import ExportOptions
from exports.records import selected

SPLITS = ("train", "validation", "test")


def split_tasks(
    examples: QuerySet[TrainingExample], options: ExportOptions
) -> dict[str, list[int]]:
    """The task ids of each split (see the module docstring for the rule)."""
    return assign(task_weights(examples, options), options.split_ratio, options.seed)


def task_weights(examples: QuerySet[TrainingExample], options: ExportOptions) -> dict[int, int]:
    """Every task of `examples` -> how many of its examples the export writes (may be 0)."""
    tasks = examples.order_by().values_list("execution__task_id", flat=True).distinct()
    weights = dict.fromkeys(tasks, 0)
    counted = (
        selected(examples, options)
        .order_by()
        .values("execution__task_id")
        .annotate(n=Count("pk"))
        .values_list("execution__task_id", "n")
    )
    weights.update(counted)
    return weights


def assign(
    weights: Mapping[int, int], ratio: tuple[float, float, float], seed: int
) -> dict[str, list[int]]:
    """Place each task (id -> weight) in a split; returns the sorted task ids per split."""
    order = sorted(weights)
    random.Random(seed).shuffle(order)
    order.sort(key=lambda task: weights[task], reverse=True)
    total = sum(weights.values())
    targets = [share * total for share in ratio]
    counts = [0] * len(SPLITS)
    plan: dict[str, list[int]] = {name: [] for name in SPLITS}
    for task in order:
        gaps = [target - count for target, count in zip(targets, counts, strict=True)]
        best = max(range(len(SPLITS)), key=lambda i: (gaps[i], -i))
        counts[best] += weights[task]
        plan[SPLITS[best]].append(task)
    return {name: sorted(tasks) for name, tasks in plan.items()}
