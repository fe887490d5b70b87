"""Finding training examples: the seed's filter names, shared by pages, exports and the API."""

from __future__ import annotations

from typing import Literal

from django.db.models import QuerySet
from pydantic import BaseModel, ConfigDict, Field

from collection.models import Difficulty, Source, TaskStatus, TrainingExample


class ExampleFilters(BaseModel):
    """Filters as the seed names them (`min_quality`, `category`, `is_golden`, `difficulty`),
    and ours. `duplicates`: "include" (the default), "exclude" (leave out examples that are a
    duplicate of an earlier one, `collection.duplicates`) or "only"."""

    model_config = ConfigDict(extra="forbid")

    min_quality: float | None = Field(default=None, ge=0, le=1)
    max_quality: float | None = Field(default=None, ge=0, le=1)
    category: str | None = None
    difficulty: Difficulty | None = None
    is_golden: bool | None = None
    validated: bool | None = None
    status: TaskStatus | None = None
    source: Source | None = None
    tag: str | None = None
    q: str | None = Field(default=None, description="text in the task name or description")
    duplicates: Literal["include", "exclude", "only"] = "include"

    @classmethod
    def from_query(cls, params: dict[str, str]) -> ExampleFilters:
        """Parse a GET query; empty values mean "no filter"."""
        return cls.model_validate({k: v for k, v in params.items() if v not in ("", None)})


def filter_examples(filters: ExampleFilters | dict | None = None) -> QuerySet[TrainingExample]:
    f = filters if isinstance(filters, ExampleFilters) else ExampleFilters(**(filters or {}))
    qs = TrainingExample.objects.select_related("execution__task", "reviewer")
    lookups = {
        "quality_score__gte": f.min_quality,
        "quality_score__lte": f.max_quality,
        "execution__task__category": f.category,
        "execution__task__difficulty": f.difficulty,
        "is_golden": f.is_golden,
        "validated": f.validated,
        "execution__status": f.status,
        "execution__source": f.source,
    }
    qs = qs.filter(**{k: v for k, v in lookups.items() if v is not None})
    if f.duplicates != "include":
        qs = qs.filter(duplicate_of__isnull=f.duplicates == "exclude")
    if f.tag:
        # JSON containment isn't portable to SQLite; tags are short, so match in Python.
        ids = [e.pk for e in qs.only("id", "tags") if f.tag in e.tags]
        qs = qs.filter(pk__in=ids)
    if f.q:
        qs = qs.filter(execution__task__name__icontains=f.q) | qs.filter(
            execution__task__description__icontains=f.q
        )
    return qs
