"""Reviewer decisions on training examples, from the example page and from the admin.

A ruling sets `reviewed_at` in the same UPDATE as `is_golden`; from then on rescoring leaves the
golden flag alone (see `scoring.apply_score`).

    review_example(example, user, is_golden=False, validated=True, validator_notes="", tags=[])
    set_golden(TrainingExample.objects.filter(pk__in=ids), user, golden=True)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.utils import timezone

from collection.models import TrainingExample


def review_example(
    example: TrainingExample,
    reviewer: AbstractBaseUser,
    *,
    is_golden: bool,
    validated: bool,
    validator_notes: str,
    tags: list[str],
) -> TrainingExample:
    """Record a reviewer's ruling on one example; returns the example with the ruling set."""
    ruling = _ruling(
        reviewer,
        is_golden=is_golden,
        validated=validated,
        validator_notes=validator_notes,
        tags=sorted(set(tags)),
    )
    # Only the review's columns: a save() would also write back a stale quality_score.
    TrainingExample.objects.filter(pk=example.pk).update(**ruling)
    for name, value in ruling.items():
        setattr(example, name, value)
    return example


def set_golden(
    examples: QuerySet[TrainingExample] | Iterable[int], reviewer: AbstractBaseUser, golden: bool
) -> int:
    """Rule many examples golden (or not) in one UPDATE; returns how many were ruled on."""
    ids = (
        examples.values_list("pk", flat=True) if isinstance(examples, QuerySet) else list(examples)
    )
    rows = TrainingExample.objects.filter(pk__in=ids)
    return rows.update(**_ruling(reviewer, is_golden=golden))


def _ruling(reviewer: AbstractBaseUser, **fields: Any) -> dict[str, Any]:
    now = timezone.now()
    # update() skips auto_now, so updated_at is set here.
    return fields | {"reviewer": reviewer, "reviewed_at": now, "updated_at": now}
