"""Finding training examples: the seed's filter names, shared by pages, exports and the API.

    filters = ExampleFilters.from_query(request.GET.dict())   # 400 on a bad value
    filter_examples(filters)                                  # every match, in the sort's order
    page_examples(filters, after=123)                         # one keyset page of the list

Pages are keyset pages: "the rows after (or before) example 123 in this order", so the last
page costs what the first does, and every sort has a tie-break on the id that matches an index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from django.db import connection
from django.db.models import BooleanField, Exists, OuterRef, Q, QuerySet
from django.db.models.expressions import BaseExpression, RawSQL
from django.utils import timezone
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from collection import search
from collection.models import (
    Difficulty,
    Source,
    StepMark,
    TaskStatus,
    ToolCall,
    TrainingExample,
)

# What the list can be sorted by (`sort=quality`, `sort=-cost`): name -> model field.
SORTS = {
    "task": "execution__task__name",
    "category": "category",  # the task's, kept on the example (collection.example_category)
    "difficulty": "execution__task__difficulty",
    "status": "execution__status",
    "quality": "quality_score",
    "golden": "is_golden",
    "validated": "validated",
    "cost": "execution__cost_usd",
    "turns": "execution__num_turns",
    "model": "execution__model",
    "created": "created_at",
    "relevance": search.RANK,  # with a search only: how well each example matches it
}
DEFAULT_ORDER = [("quality_score", True), ("id", True)]
# A tool filter's value meaning "whichever tool".
ANY_TOOL = "any"
PAGE_SIZE = 25
# Past this many matches a filtered list says "1000+" instead of counting them all (a count
# reads every match: 100 ms for 10,000 at 100k rows). A search with more matches than this
# comes in the list's order unless sort=relevance asks: ranking also reads every match.
COUNT_LIMIT = 1000
# Past this many examples (PostgreSQL's own estimate) the unfiltered list says "about N" from
# the table's statistics instead of counting every row: a count(*) grows with the table (about
# 100 ms at 1,000,000 rows, more under concurrent writes), the estimate costs nothing.
ESTIMATE_FROM = 100_000


class ExampleFilters(BaseModel):
    """Filters as the seed names them (`min_quality`, `category`, `is_golden`, `difficulty`),
    and ours. `duplicates`: "include" (the default), "exclude" (leave out examples that are a
    duplicate of an earlier one, `collection.duplicates`) or "only". `q` is a full-text search
    of the prompt and the assistant's text (`collection.search`); without a `sort`, its results
    come best match first."""

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
    q: str | None = Field(default=None, max_length=500)
    duplicates: Literal["include", "exclude", "only"] = "include"
    model: str | None = Field(default=None, description="the session's model, exactly")
    tool: str | None = Field(default=None, description="a tool the session called")
    tool_error: str | None = Field(default=None, description="a tool that failed, or 'any'")
    min_cost: float | None = Field(default=None, ge=0)
    max_cost: float | None = Field(default=None, ge=0)
    min_turns: int | None = Field(default=None, ge=0)
    max_turns: int | None = Field(default=None, ge=0)
    created_from: date | None = None
    created_to: date | None = None
    reviewer: str | None = Field(default=None, description="the reviewer's username")
    bad_steps: bool | None = Field(default=None, description="has a step marked bad")
    sort: str | None = Field(default=None, description="a SORTS name, '-' first for descending")

    @field_validator("sort")
    @classmethod
    def _known_sort(cls, value: str | None) -> str | None:
        if value is not None and value.removeprefix("-") not in SORTS:
            raise ValueError(f"unknown sort {value!r}; choose one of {', '.join(SORTS)}")
        return value

    @field_validator("q")
    @classmethod
    def _searchable(cls, value: str | None) -> str | None:
        if value is not None and not search.words(value):
            raise ValueError("search for at least one word (letters or digits)")
        return value

    @model_validator(mode="after")
    def _ranges_in_order(self) -> ExampleFilters:
        for low, high in (
            ("min_quality", "max_quality"),
            ("min_cost", "max_cost"),
            ("min_turns", "max_turns"),
            ("created_from", "created_to"),
        ):
            lo, hi = getattr(self, low), getattr(self, high)
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"{low} is above {high}")
        return self

    @classmethod
    def from_query(cls, params: dict[str, Any]) -> ExampleFilters:
        """Parse a GET query; empty values mean "no filter"."""
        return cls.model_validate({k: v for k, v in params.items() if v not in ("", None)})

    def narrows(self) -> bool:
        """Whether any filter is set (a sort alone leaves every example)."""
        return bool(self.model_dump(exclude_defaults=True, exclude={"sort"}))

    def order(self, *, rank: bool = True) -> list[tuple[str, bool]]:
        """The list's order as (field, descending) pairs, ending on the id. A search without a
        sort comes best match first when `rank`; relevance without a search means nothing."""
        name = (self.sort or "").removeprefix("-")
        if name == "relevance" and not self.q:
            name = ""
        if name:
            descending = bool(self.sort and self.sort.startswith("-"))
            return [(SORTS[name], descending), ("id", descending)]
        if self.q and rank:
            return [(search.RANK, True), ("id", True)]
        return DEFAULT_ORDER


def filter_examples(filters: ExampleFilters | dict | None = None) -> QuerySet[TrainingExample]:
    f = filters if isinstance(filters, ExampleFilters) else ExampleFilters(**(filters or {}))
    qs = TrainingExample.objects.select_related("execution__task", "reviewer")
    qs = qs.filter(**{k: v for k, v in _lookups(f).items() if v is not None})
    for condition in _conditions(f):
        qs = qs.filter(condition)
    if f.tag:
        qs = _with_tag(qs, f.tag)
    if f.q:
        qs = search.matching(qs, f.q)
    return qs.order_by(*_order_by(f.order()))


def _lookups(f: ExampleFilters) -> dict[str, Any]:
    return {
        "quality_score__gte": f.min_quality,
        "quality_score__lte": f.max_quality,
        "category": f.category,
        "execution__task__difficulty": f.difficulty,
        "is_golden": f.is_golden,
        "validated": f.validated,
        "execution__status": f.status,
        "execution__source": f.source,
        "execution__model": f.model,
        "execution__cost_usd__gte": f.min_cost,
        "execution__cost_usd__lte": f.max_cost,
        "execution__num_turns__gte": f.min_turns,
        "execution__num_turns__lte": f.max_turns,
        "created_at__gte": _day_start(f.created_from),
        "created_at__lt": _day_start(f.created_to, days=1),  # the whole last day
        "reviewer__username": f.reviewer,
    }


def _conditions(f: ExampleFilters) -> list[Q | BaseExpression]:
    """The filters that are not a plain lookup: duplicates, tools, bad steps."""
    found: list[Q | BaseExpression] = []
    if f.duplicates != "include":
        found.append(Q(duplicate_of__isnull=f.duplicates == "exclude"))
    calls = ToolCall.objects.filter(execution=OuterRef("execution_id"))
    if f.tool:
        found.append(Exists(calls.filter(name=f.tool)))
    if f.tool_error:
        failed = calls.filter(is_error=True)
        found.append(
            Exists(failed if f.tool_error == ANY_TOOL else failed.filter(name=f.tool_error))
        )
    if f.bad_steps is not None:
        marked = Exists(StepMark.objects.filter(example=OuterRef("pk")))
        found.append(marked if f.bad_steps else ~marked)
    return found


def _day_start(day: date | None, days: int = 0) -> datetime | None:
    if day is None:
        return None
    return timezone.make_aware(datetime.combine(day + timedelta(days=days), time.min))


def _order_by(order: list[tuple[str, bool]]) -> list[str]:
    return [f"-{field}" if descending else field for field, descending in order]


def _with_tag(qs: QuerySet[TrainingExample], tag: str) -> QuerySet[TrainingExample]:
    """Examples carrying `tag`, decided in the database: JSONB containment on PostgreSQL,
    JSON1's json_each on SQLite (which has no containment lookup). Asked row by row (EXISTS),
    so a page in the list's order stops reading once it has its rows."""
    if connection.vendor == "postgresql":
        return qs.filter(tags__contains=[tag])
    tagged = RawSQL(
        "EXISTS (SELECT 1 FROM json_each(collection_trainingexample.tags) WHERE value = %s)",
        [tag],
        output_field=BooleanField(),
    )
    return qs.filter(tagged)


# --- pages ------------------------------------------------------------------------------------

# The columns the example table shows (`templates/collection/_example_table.html`).
SHOWN = (
    "id",
    "quality_score",
    "is_golden",
    "validated",
    "duplicate_of",
    "created_at",
    "execution",
    "execution__status",
    "execution__success",
    "execution__is_partial",
    "execution__cost_usd",
    "execution__num_turns",
    "execution__model",
    "execution__task",
    "execution__task__name",
    "execution__task__category",
    "execution__task__difficulty",
)


class Cursor(BaseModel):
    """Where a list page starts: after or before an example (by id), or the last page."""

    model_config = ConfigDict(extra="forbid")

    after: int | None = Field(default=None, ge=1)
    before: int | None = Field(default=None, ge=1)
    last: bool = False

    @classmethod
    def split_query(cls, params: dict[str, Any]) -> tuple[Cursor, ExampleFilters]:
        """A list URL's query as its cursor and its filters; raises ValidationError."""
        paging = {k: params.pop(k) for k in list(params) if k in cls.model_fields}
        cursor = cls.model_validate({k: v for k, v in paging.items() if v not in ("", None)})
        return cursor, ExampleFilters.from_query(params)


@dataclass
class ExamplePage:
    """One page of the list: its rows, whether there are more either way, and the total."""

    rows: list[TrainingExample]
    count: int
    has_previous: bool
    has_next: bool
    ranked: bool = False  # best match first (a search)
    exact: bool = False  # counted to the end (no filter), not stopped at COUNT_LIMIT
    estimated: bool = False  # no filter, a big table: the database's estimate, not a count

    @property
    def count_capped(self) -> bool:
        """More matches than were counted (see COUNT_LIMIT)."""
        return not self.exact and self.count > COUNT_LIMIT

    @property
    def count_label(self) -> str:
        """ "1000+" past COUNT_LIMIT (the count stops there), "about 1,234,000" for an
        estimate, else the count."""
        if self.estimated:
            return f"about {self.count:,}"
        return f"{COUNT_LIMIT}+" if self.count_capped else str(self.count)

    @property
    def first_id(self) -> int | None:
        return self.rows[0].pk if self.rows else None

    @property
    def last_id(self) -> int | None:
        return self.rows[-1].pk if self.rows else None


def page_examples(
    filters: ExampleFilters, cursor: Cursor | None = None, *, size: int = PAGE_SIZE
) -> ExamplePage:
    """The page after example `after`, before example `before`, the last page, or the first.

    Three queries whatever the page: the cursor row's sort values, the count (unfiltered, on
    a big PostgreSQL table: the estimate), the rows.
    """
    cursor = cursor or Cursor()
    after, before, last = cursor.after, cursor.before, cursor.last
    matches = filter_examples(filters)
    exact = not filters.narrows()
    estimate = estimated_total() if exact else None
    if estimate is not None:
        count = estimate
    else:
        count = TrainingExample.objects.count() if exact else _count(matches)
    order = filters.order(rank=count <= COUNT_LIMIT)
    matches = matches.order_by(*_order_by(order))
    backwards = before is not None or last
    start = after if after is not None else before
    rows_qs = matches.order_by(*_order_by([(k, d != backwards) for k, d in order]))
    if start is not None:
        rows_qs = beyond(filters, matches, start, backwards=backwards, order=order)
    rows = list(_shown(rows_qs)[: size + 1])
    more, rows = len(rows) > size, rows[:size]
    if backwards:
        rows.reverse()
    ranked = order[0][0] == search.RANK
    estimated = estimate is not None
    if backwards:
        return ExamplePage(rows, count, more, not last, ranked, exact, estimated)
    return ExamplePage(rows, count, after is not None, more, ranked, exact, estimated)


def estimated_total() -> int | None:
    """How many examples there are by PostgreSQL's statistics (rows per page as of the last
    analyse, times the table's pages now, as the planner reckons it) when that is at least
    ESTIMATE_FROM; None on a smaller or never analysed table, or another database."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT CASE WHEN relpages > 0 THEN reltuples / relpages "
            "* (pg_relation_size(oid) / current_setting('block_size')::int) END "
            "FROM pg_class WHERE oid = %s::regclass",
            [TrainingExample._meta.db_table],
        )
        row = cursor.fetchone()
    estimate = int(row[0]) if row and row[0] is not None else 0
    return estimate if estimate >= ESTIMATE_FROM else None


def _count(matches: QuerySet[TrainingExample]) -> int:
    """Filtered rows counted up to COUNT_LIMIT + 1, so that a broad filter costs what the
    first rows do, not a scan of every match (unfiltered, the index-only count is exact)."""
    return matches.order_by()[: COUNT_LIMIT + 1].count()


def _shown(qs: QuerySet[TrainingExample]) -> QuerySet[TrainingExample]:
    """Only the columns the table shows (the reviewer is not shown, so not joined)."""
    return qs.select_related(None).select_related("execution__task").only(*SHOWN)


def beyond(
    filters: ExampleFilters,
    rows: QuerySet[TrainingExample],
    pk: int,
    *,
    backwards: bool = False,
    order: list[tuple[str, bool]] | None = None,
) -> QuerySet[TrainingExample]:
    """`rows` after example `pk` in the list's order, or before it (nearest first), by keyset:
    the list's pages and the review queue's next/previous walk the same order."""
    order = order or filters.order()
    values = _cursor_values(filters, order, pk)
    if values is not None:
        rows = rows.filter(_beyond(order, values, backwards=backwards))
    return rows.order_by(*_order_by([(k, d != backwards) for k, d in order]))


def _cursor_values(
    filters: ExampleFilters, order: list[tuple[str, bool]], pk: int
) -> tuple[Any, ...] | None:
    """The sort values of example `pk`, whether or not it still matches the filters."""
    rows = TrainingExample.objects.filter(pk=pk)
    if order[0][0] == search.RANK and filters.q:
        rows = search.matching(rows, filters.q)
    return rows.values_list(*[field for field, _ in order]).first()


def _beyond(order: list[tuple[str, bool]], values: tuple[Any, ...], *, backwards: bool) -> Q:
    """Rows past the cursor in this order: (a, b) > (x, y) spelt out column by column, plus a
    bound on the first column alone so that the database can start its index scan there."""
    past = Q()
    equal = Q()
    for (field, descending), value in zip(order, values, strict=True):
        op = "lt" if descending != backwards else "gt"
        past |= equal & Q(**{f"{field}__{op}": value})
        equal &= Q(**{field: value})
    field, descending = order[0]
    bound = Q(**{f"{field}__{'lte' if descending != backwards else 'gte'}": values[0]})
    return bound & past


def describe(exc: ValidationError) -> str:
    """A bad query as people read it: "min_cost: Input should be a valid number; ..." (errors
    about the filters as a whole, such as a range the wrong way round, are named "filters")."""
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'filters'}: {e['msg']}" for e in exc.errors()
    )
