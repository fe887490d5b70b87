"""Finding training examples: the seed's filter names, shared by pages, exports and the API."""

from __future__ import annotations

from typing import Literal

from django.db import connection
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL
from pydantic import BaseModel, ConfigDict, Field, field_validator

from collection.models import Difficulty, Source, TaskStatus, TrainingExample

# What the list can be sorted by (`sort=quality`, `sort=-cost`): name -> model field.
SORTS = {
    "task": "execution__task__name",
    "category": "execution__task__category",
    "difficulty": "execution__task__difficulty",
    "status": "execution__status",
    "quality": "quality_score",
    "golden": "is_golden",
    "validated": "validated",
    "cost": "execution__cost_usd",
    "turns": "execution__num_turns",
    "created": "created_at",
}


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
    sort: str | None = Field(default=None, description="a SORTS name, '-' first for descending")

    @field_validator("sort")
    @classmethod
    def _known_sort(cls, value: str | None) -> str | None:
        if value is not None and value.removeprefix("-") not in SORTS:
            raise ValueError(f"unknown sort {value!r}; choose one of {', '.join(SORTS)}")
        return value

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
        qs = _with_tag(qs, f.tag)
    if f.q:
        qs = qs.filter(execution__task__name__icontains=f.q) | qs.filter(
            execution__task__description__icontains=f.q
        )
    if f.sort:
        field = SORTS[f.sort.removeprefix("-")]
        qs = qs.order_by(f"-{field}" if f.sort.startswith("-") else field, "-id")
    return qs


def _with_tag(qs: QuerySet[TrainingExample], tag: str) -> QuerySet[TrainingExample]:
    """Examples carrying `tag`, decided in the database: JSONB containment on PostgreSQL,
    JSON1's json_each on SQLite (which has no containment lookup)."""
    if connection.vendor == "postgresql":
        return qs.filter(tags__contains=[tag])
    tagged = RawSQL(
        "SELECT e.id FROM collection_trainingexample e, json_each(e.tags) t WHERE t.value = %s",
        [tag],
    )
    return qs.filter(pk__in=tagged)
