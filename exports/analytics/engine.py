"""The analytics engine: DuckDB aggregates over the Parquet snapshot of the system of record.

    analytics = get_analytics(ExampleFilters(category="debugging"))   # refreshes first
    analytics.summary["success_rate"]
    analytics.as_of                   # when the snapshot's data was read from the database
    table = analytics.tables["by_category_difficulty"]
    for row, link in zip(table.rows, table.links or []):
        ...   # link: the examples-list query showing that row's examples

Every page, report and API asks this one function, so their figures agree. Freshness: with
`refresh=True` (the default, for scripts and commands) the snapshot is brought up to date
incrementally first (`snapshot.refresh_snapshot`; two small queries when nothing changed).
Pages pass `refresh=False` and keep the snapshot fresh in the background instead
(`exports.analytics.freshness`), saying how old their figures are (`as_of`), and ask the
result cache (`exports.analytics.cache`): one computation per snapshot version and filters,
shared by every web process.

Filters are the examples list's (`collection.queries.ExampleFilters`), applied in DuckDB over
the snapshot's columns, tool filters included (each row carries its tool counts). Only the
full-text search `q` is asked of the database: the ids `filter_examples(q=...)` matches are
joined in, so a search means here what it means in the list.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from django.conf import settings
from django.utils import timezone

from collection import calibration
from collection.models import Difficulty
from collection.queries import ANY_TOOL, ExampleFilters, filter_examples
from exports.analytics.snapshot import (
    RefreshStats,
    as_of,
    examples_sql,
    files_of,
    latest_sql,
    read_state,
    refresh_snapshot,
    snapshot_dir,
)

__all__ = ["Analytics", "RefreshStats", "Table", "compute", "get_analytics", "refresh_snapshot"]

QUALITY_BUCKETS = 20
# Upper bounds (tokens) of the conversation length buckets, and the context limits they meet.
TOKEN_BOUNDS = [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 200_000, 1_000_000]
CONTEXT_LIMITS = [(8_000, "8K"), (32_000, "32K"), (128_000, "128K"), (200_000, "200K")]
CONTEXT_LIMITS += [(1_000_000, "1M")]
DURATION_BOUNDS = [0, 10, 30, 60, 120, 300, 600, 1_800, 3_600]
TOP_REASONS = 20
DIFFICULTY_ORDER = [d.value for d in Difficulty]


@dataclass
class Table:
    """One breakdown: named columns, rows, and per row the examples-list query showing it."""

    name: str
    title: str
    columns: list[str]
    rows: list[tuple[Any, ...]]
    links: list[dict[str, str]] | None = None

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


@dataclass
class Analytics:
    summary: dict[str, float | int]
    tables: dict[str, Table] = field(default_factory=dict)
    filters: ExampleFilters = field(default_factory=ExampleFilters)
    as_of: datetime | None = None  # when the snapshot's data was read (None: no snapshot)
    version: int | None = None  # the snapshot version the figures come from
    stale: bool = False  # from the result cache: an older version's, the current one coming


def get_analytics(
    filters: ExampleFilters | None = None,
    *,
    refresh: bool = True,
    directory: Path | None = None,
) -> Analytics:
    """Every figure and breakdown for the examples matching `filters` (all without)."""
    directory = directory or snapshot_dir()
    if refresh:
        refresh_snapshot(directory=directory)
    return compute(filters or ExampleFilters(), directory, read_state(directory))


def compute(filters: ExampleFilters, directory: Path, state: dict[str, Any] | None) -> Analytics:
    """The figures of the snapshot in `state` (read once: its files, version and date agree).
    Pages ask `exports.analytics.cache.cached_analytics`, which computes once per version."""
    with _Query(files_of(directory, state), filters) as query:
        tables = [builder(query) for builder in TABLES]
        version = state["version"] if state else None
        tables_by_name = {t.name: t for t in tables}
        return Analytics(query.summary(), tables_by_name, filters, as_of(state), version)


# --- running queries over the selected examples --------------------------------------------


_local = threading.local()


def _connection() -> duckdb.DuckDBPyConnection:
    """One DuckDB connection per thread (a connection is not shared between threads)."""
    con: duckdb.DuckDBPyConnection | None = getattr(_local, "con", None)
    if con is None:
        con = duckdb.connect()
        # Days are the site's days, as the list's date filters read them.
        con.execute(f"SET TimeZone = '{settings.TIME_ZONE}'")
        _local.con = con
    return con


class _Query:
    """The selected examples as the temporary view `sel` (and all as `ex`), on one
    connection, for the builders to aggregate."""

    def __init__(self, files: list[Path], filters: ExampleFilters) -> None:
        self.files = files
        self.filters = filters
        self.con = _connection()
        self.base_link = {
            k: str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in filters.model_dump(mode="json", exclude_defaults=True).items()
            if k != "sort"
        }

    def __enter__(self) -> _Query:
        where = _where(self.filters, self.con)
        latest = None
        if len(self.files) > 1:
            # The deltas are small: merged once here, not by each of the tables' queries.
            sql = latest_sql(self.files)
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE latest_rows AS {sql}")
            latest = "latest_rows"
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW ex AS {examples_sql(self.files, latest)}")
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW sel AS SELECT * FROM ex WHERE {where}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.con.execute("DROP VIEW IF EXISTS sel")
        self.con.execute("DROP VIEW IF EXISTS ex")
        self.con.execute("DROP TABLE IF EXISTS latest_rows")
        if self.filters.q:
            self.con.unregister("q_ids")

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.con.execute(sql).fetchall()

    def link(self, **params: Any) -> dict[str, str]:
        return self.base_link | {k: str(v) for k, v in params.items()}

    def summary(self) -> dict[str, float | int]:
        row = self.rows(
            "SELECT count(*), count(*) FILTER (success), count(*) FILTER (is_golden), "
            "count(*) FILTER (validated), coalesce(avg(quality), 0), coalesce(sum(cost_usd), 0), "
            "coalesce(sum(input_tokens + output_tokens + cache_read_tokens "
            "+ cache_creation_tokens), 0), count(*) FILTER (duplicate_of IS NOT NULL), "
            "count(*) FILTER (reviewed_at IS NOT NULL) FROM sel"
        )[0]
        total = int(row[0])
        return {
            "total_examples": total,
            "passed_examples": int(row[1]),
            "success_rate": row[1] / total if total else 0.0,
            "golden_examples": int(row[2]),
            "validated_examples": int(row[3]),
            "avg_quality": float(row[4]),
            "total_cost_usd": float(row[5]),
            "avg_cost_usd": float(row[5]) / total if total else 0.0,
            "total_tokens": int(row[6]),
            "duplicates": int(row[7]),
            "reviewed_examples": int(row[8]),
        }


def _where(f: ExampleFilters, con: duckdb.DuckDBPyConnection) -> str:
    """The filters as a DuckDB condition over the snapshot's columns. A view takes no
    parameters, so values are written as quoted literals (validated by ExampleFilters first)."""
    parts: list[str] = ["true"]
    for column, op, value in _comparisons(f):
        if value is not None:
            parts.append(f"{column} {op} {_literal(value)}")
    if f.duplicates != "include":
        parts.append(f"duplicate_of IS {'NULL' if f.duplicates == 'exclude' else 'NOT NULL'}")
    if f.bad_steps is not None:
        parts.append("bad_steps > 0" if f.bad_steps else "bad_steps = 0")
    if f.tag:
        parts.append(f"list_contains(tags, {_literal(f.tag)})")
    if f.tool:
        parts.append(f"len(list_filter(tools, lambda t: t.name = {_literal(f.tool)})) > 0")
    if f.tool_error:
        name = "true" if f.tool_error == ANY_TOOL else f"t.name = {_literal(f.tool_error)}"
        parts.append(f"len(list_filter(tools, lambda t: t.errors > 0 AND {name})) > 0")
    if f.q:
        ids = filter_examples(ExampleFilters(q=f.q)).order_by().values_list("pk", flat=True)
        con.register("q_ids", pa.table({"id": pa.array(list(ids), pa.int64())}))
        parts.append("id IN (SELECT id FROM q_ids)")
    return " AND ".join(parts)


def _comparisons(f: ExampleFilters) -> list[tuple[str, str, Any]]:
    return [
        ("quality", ">=", f.min_quality),
        ("quality", "<=", f.max_quality),
        ("category", "=", f.category),
        ("difficulty", "=", f.difficulty),
        ("is_golden", "=", f.is_golden),
        ("validated", "=", f.validated),
        ("status", "=", f.status),
        ("source", "=", f.source),
        ("model", "=", f.model),
        ("cost_usd", ">=", f.min_cost),
        ("cost_usd", "<=", f.max_cost),
        ("num_turns", ">=", f.min_turns),
        ("num_turns", "<=", f.max_turns),
        ("created_at", ">=", _day_start(f.created_from)),
        ("created_at", "<", _day_start(f.created_to, days=1)),  # the whole last day
        ("reviewer", "=", f.reviewer),
    ]


def _day_start(day: date | None, days: int = 0) -> datetime | None:
    """As the list reads a date filter: midnight in the current time zone."""
    if day is None:
        return None
    return timezone.make_aware(datetime.combine(day + timedelta(days=days), time.min))


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'::TIMESTAMPTZ"
    return "'" + str(value).replace("'", "''") + "'"


# --- the tables -------------------------------------------------------------------------------


def _over_time(q: _Query) -> Table:
    rows = q.rows(
        "SELECT created_at::DATE AS day, count(*), count(*) FILTER (success), "
        "count(*) FILTER (is_golden) FROM sel GROUP BY day ORDER BY day"
    )
    links = [q.link(created_from=r[0].isoformat(), created_to=r[0].isoformat()) for r in rows]
    columns = ["day", "examples", "passed", "golden"]
    return Table("over_time", "Examples over time", columns, rows, links)


def _by_category_difficulty(q: _Query) -> Table:
    targets = calibration.current().pass_rate
    found = q.rows(
        "SELECT category, difficulty, count(*), count(*) FILTER (success) / count(*), "
        "avg(quality) FROM sel GROUP BY category, difficulty"
    )
    order = {d: i for i, d in enumerate(DIFFICULTY_ORDER)}
    found.sort(key=lambda r: (r[0], order.get(r[1], len(order)), r[1]))
    rows = [(*r, targets.get(r[1])) for r in found]
    links = [q.link(category=r[0], difficulty=r[1]) for r in rows]
    columns = ["category", "difficulty", "examples", "success_rate", "avg_quality"]
    return Table(
        "by_category_difficulty",
        "Success rate and quality by category and difficulty",
        [*columns, "target_pass_rate"],
        rows,
        links,
    )


def _quality_histogram(q: _Query) -> Table:
    n = QUALITY_BUCKETS
    counts = dict(
        q.rows(
            f"SELECT least(floor(quality * {n} + 1e-9), {n - 1})::INTEGER AS b, count(*) "
            "FROM sel GROUP BY b"
        )
    )
    threshold = float(settings.TRAININGDASH_SCORING["golden_threshold"])
    rows = [(b / n, (b + 1) / n, int(counts.get(b, 0)), threshold) for b in range(n)]
    links = [q.link(min_quality=r[0], max_quality=r[1]) for r in rows]
    columns = ["bucket_start", "bucket_end", "examples", "golden_threshold"]
    return Table("quality_histogram", "Quality", columns, rows, links)


COST_COLUMNS = ["examples", "cost_usd", "avg_cost_usd", "input_tokens", "output_tokens"]
COST_COLUMNS += ["cache_read_tokens", "cache_creation_tokens"]


def _cost_by(q: _Query, key: str) -> Table:
    rows = q.rows(
        f"SELECT {key}, count(*), sum(cost_usd), avg(cost_usd), sum(input_tokens)::BIGINT, "
        "sum(output_tokens)::BIGINT, sum(cache_read_tokens)::BIGINT, "
        f"sum(cache_creation_tokens)::BIGINT FROM sel GROUP BY {key} ORDER BY 3 DESC, 1"
    )
    # An empty model is no filter at all in the list: such a row links nowhere.
    links = [q.link(**{key: r[0]}) if r[0] else {} for r in rows]
    title = f"Cost and tokens by {key}"
    return Table(f"cost_by_{key}", title, [key, *COST_COLUMNS], rows, links)


def _cost_by_model(q: _Query) -> Table:
    return _cost_by(q, "model")


def _cost_by_source(q: _Query) -> Table:
    return _cost_by(q, "source")


def _token_lengths(q: _Query) -> Table:
    cases = " ".join(
        f"WHEN conversation_tokens <= {b} THEN {i}" for i, b in enumerate(TOKEN_BOUNDS)
    )
    counts = dict(
        q.rows(
            f"SELECT CASE {cases} ELSE {len(TOKEN_BOUNDS)} END AS b, count(*) FROM sel GROUP BY b"
        )
    )
    rows = []
    for i in range(len(TOKEN_BOUNDS) + 1):
        rows.append((_token_bucket(i), int(counts.get(i, 0)), _fits(i)))
    return Table(
        "token_lengths",
        "Exported conversation length (estimated tokens)",
        ["bucket", "examples", "context_limit_label"],
        rows,
        None,
    )


def _short(tokens: int) -> str:
    return f"{tokens // 1_000_000}M" if tokens >= 1_000_000 else f"{tokens // 1000}K"


def _token_bucket(i: int) -> str:
    if i == len(TOKEN_BOUNDS):
        return f"> {_short(TOKEN_BOUNDS[-1])}"
    low = _short(TOKEN_BOUNDS[i - 1]) if i else "0"
    return f"{low}–{_short(TOKEN_BOUNDS[i])}"


def _fits(i: int) -> str:
    """The smallest common context limit a conversation in bucket i fits in."""
    if i == len(TOKEN_BOUNDS):
        return f"over {CONTEXT_LIMITS[-1][1]}"
    return next(f"fits {label}" for limit, label in CONTEXT_LIMITS if TOKEN_BOUNDS[i] <= limit)


def _tool_usage(q: _Query) -> Table:
    rows = q.rows(
        "SELECT t.name, sum(t.calls)::BIGINT AS calls, sum(t.errors)::BIGINT, "
        "sum(t.errors) / sum(t.calls) FROM (SELECT unnest(tools) AS t FROM sel) "
        "GROUP BY t.name ORDER BY calls DESC, t.name"
    )
    links = [q.link(tool=r[0]) for r in rows]
    columns = ["tool", "calls", "errors", "error_rate"]
    return Table("tool_usage", "Tool calls and tool errors", columns, rows, links)


def _turns(q: _Query) -> Table:
    rows = q.rows("SELECT num_turns, count(*) FROM sel GROUP BY num_turns ORDER BY num_turns")
    links = [q.link(min_turns=r[0], max_turns=r[0]) for r in rows]
    return Table("turns", "Turns per session", ["turns", "examples"], rows, links)


def _duration(q: _Query) -> Table:
    bounds = DURATION_BOUNDS
    cases = " ".join(
        f"WHEN duration_ms < {b * 1000} THEN {bounds[i - 1]}" for i, b in enumerate(bounds) if i
    )
    counts = dict(
        q.rows(
            f"SELECT CASE {cases} ELSE {bounds[-1]} END AS b, count(*) FROM sel "
            "WHERE duration_ms IS NOT NULL GROUP BY b"
        )
    )
    rows = [(b, int(counts.get(b, 0))) for b in bounds]
    return Table("duration", "Session duration", ["bucket_seconds", "examples"], rows, None)


def _review_by_reviewer(q: _Query) -> Table:
    rows = q.rows(
        "SELECT reviewer, count(*) FILTER (reviewed_at IS NOT NULL), count(*) FILTER (validated), "
        "count(*) FILTER (is_golden), sum(bad_steps)::BIGINT FROM sel "
        "WHERE reviewer IS NOT NULL GROUP BY reviewer ORDER BY 2 DESC, reviewer"
    )
    links = [q.link(reviewer=r[0]) for r in rows]
    columns = ["reviewer", "reviewed", "validated", "golden", "bad_steps"]
    return Table("review_by_reviewer", "Review progress by reviewer", columns, rows, links)


def _failure_reasons(q: _Query) -> Table:
    found = q.rows(
        "SELECT failure_reason, count(*) AS n FROM sel WHERE success IS NOT TRUE "
        "GROUP BY failure_reason ORDER BY n DESC, failure_reason"
    )
    rows = [(r[0] or "(no reason recorded)", r[1]) for r in found[:TOP_REASONS]]
    if rest := sum(r[1] for r in found[TOP_REASONS:]):
        rows.append(("(other reasons)", rest))
    # The list has no filter by reason: these rows link nowhere.
    return Table("failure_reasons", "Why sessions did not pass", ["reason", "examples"], rows, None)


def _duplicates(q: _Query) -> Table:
    found = dict(
        q.rows(
            "SELECT CASE WHEN duplicate_of IS NOT NULL THEN 'duplicate' "
            "WHEN id IN (SELECT duplicate_of FROM ex WHERE duplicate_of IS NOT NULL) "
            "THEN 'original' ELSE 'unique' END AS kind, count(*) FROM sel GROUP BY kind"
        )
    )
    kinds = ["unique", "original", "duplicate"]
    rows = [(kind, int(found.get(kind, 0))) for kind in kinds]
    links = [q.link(duplicates="exclude"), q.link(duplicates="exclude")]
    links.append(q.link(duplicates="only"))
    return Table("duplicates", "Duplicates", ["kind", "examples"], rows, links)


TABLES = [
    _over_time,
    _by_category_difficulty,
    _quality_histogram,
    _cost_by_model,
    _cost_by_source,
    _token_lengths,
    _tool_usage,
    _turns,
    _duration,
    _review_by_reviewer,
    _failure_reasons,
    _duplicates,
]
