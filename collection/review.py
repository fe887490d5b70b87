"""Reviewer decisions on training examples."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
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
    """Record a reviewer's ruling. From now on rescoring leaves the golden flag alone."""
    with transaction.atomic():
        example.is_golden = is_golden
        example.validated = validated
        example.validator_notes = validator_notes
        example.tags = sorted(set(tags))
        example.reviewer = reviewer
        example.reviewed_at = timezone.now()
        example.save()
    return example
