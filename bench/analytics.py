"""Analytics benchmark: `get_analytics()` over a large snapshot against bare DuckDB queries over
the same Parquet file, the cost of an incremental refresh, and the analytics page's time.

    .venv/bin/python bench/analytics.py                      # 1,000,000 examples
    .venv/bin/python bench/analytics.py --examples 100000    # quicker
    .venv/bin/python bench/analytics.py --full-rebuild       # also time a full rebuild

How the data is made (a fresh SQLite database in a temporary data dir):
- N examples are real rows in the database (tasks, executions, examples), inserted with raw
  `executemany` in one transaction, so that refreshes and the page read a database of that size.
  They have no trajectories (no messages, no tool call rows).
- Their snapshot is written directly with pyarrow from the same generated columns (plus
  synthetic tool counts and conversation lengths, which their missing trajectories can't
  give), in the engine's own layout: a refresh afterwards finds nothing to do.
- 1,000 new examples then come through the ORM with tool calls and messages, and 1,000
  existing ones are re-reviewed; each time one incremental refresh is timed.

Timed (best of `--repeat`):
- engine: `get_analytics(refresh=True)` (the page's call: checks the database, then every
  figure and table), and `get_analytics(refresh=False)`, unfiltered and with a filter;
- baseline: the same summary and breakdowns written as bare DuckDB SQL straight over the
  Parquet file on one connection (no filters, no links, no Python around them); and the
  single bare summary query alone, for scale. Target: engine under 2x the baseline.
- Arrow in memory: the same bare SQL over a DuckDB table loaded from the file, plus the load.
- refresh: nothing changed; after 1,000 new examples; after 1,000 re-reviews (rows written,
  seconds); optionally a full rebuild from the database.
- page: `GET /analytics/` server time through Django's test client (logged in as an admin).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from django_env import setup  # noqa: E402

CATEGORIES = ["code_review", "debugging", "refactoring", "implementation", "testing"]
CATEGORIES += ["multi_agent"]
DIFFICULTIES = ["easy", "medium", "hard", "expert"]
MODELS = ["claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5", ""]
SOURCES = ["scripted", "claude", "imported"]
TOOLS = ["Read", "Edit", "Bash", "Grep", "Glob", "Write"]
STATUSES = ["completed", "failed", "cancelled"]
REASONS = ["Timed out after 600s", "2 failed, 1 passed", "Error: budget exceeded", "gave up"]


def best(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


# --- data -------------------------------------------------------------------------------------


def generate(n: int, seed: int = 7) -> dict[str, Any]:
    """The columns of n examples (numpy arrays), ids 1..n, one task per category x difficulty."""
    import numpy as np

    rng = np.random.default_rng(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    created = (start.timestamp() * 1e6 + rng.integers(0, 365 * 86400 * 10**6, n)).astype("int64")
    created.sort()
    task = rng.integers(0, len(CATEGORIES) * len(DIFFICULTIES), n)
    success = rng.random(n) < 0.6
    status = np.where(success, 0, rng.choice([0, 1, 2], n, p=[0.6, 0.3, 0.1]))
    quality = np.round(np.clip(rng.normal(0.55, 0.2, n) + success * 0.2, 0, 1), 4)
    reviewed = rng.random(n) < 0.2
    return {
        "n": n,
        "id": np.arange(1, n + 1, dtype="int64"),
        "created": created,
        "updated": created + rng.integers(0, 3600 * 10**6, n),
        "task": task,
        "success": success,
        "status": status,
        "quality": quality,
        "golden": (quality >= 0.8) & success,
        "validated": reviewed & (rng.random(n) < 0.7),
        "reviewed": reviewed,
        "model": rng.integers(0, len(MODELS), n),
        "source": rng.integers(0, len(SOURCES), n),
        "cost": np.round(rng.gamma(2, 0.05, n), 5),
        "input": rng.integers(100, 50_000, n),
        "output": rng.integers(50, 8_000, n),
        "cache_read": rng.integers(0, 200_000, n),
        "cache_made": rng.integers(0, 20_000, n),
        "turns": rng.integers(1, 40, n),
        "duration": rng.integers(1_000, 1_800_000, n),
        "reason": rng.integers(0, len(REASONS), n),
        "conv_tokens": rng.lognormal(8.5, 1.2, n).astype("int64"),
        "tool_count": rng.integers(0, 4, n),
        "dup": rng.random(n) < 0.03,
    }


def insert_rows(cols: dict[str, Any]) -> float:
    """The examples as real database rows (raw executemany, one transaction)."""
    from django.contrib.auth.models import User
    from django.db import connection, transaction

    from collection.models import Execution, Task, TrainingExample

    started = time.perf_counter()
    reviewer = User.objects.create_user("bench-reviewer", password="x")
    tasks = [
        Task.objects.create(name=f"{c} {d}", category=c, difficulty=d)
        for c in CATEGORIES
        for d in DIFFICULTIES
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        for lo in range(0, cols["n"], 50_000):
            hi = min(lo + 50_000, cols["n"])
            _insert(cursor, Execution, _execution_rows(cols, tasks, lo, hi))
            _insert(cursor, TrainingExample, _example_rows(cols, reviewer.pk, lo, hi))
    return time.perf_counter() - started


def _dt(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1e6, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _execution_rows(cols: dict[str, Any], tasks: list[Any], lo: int, hi: int) -> list[dict]:
    rows = []
    for i in range(lo, hi):
        ok = bool(cols["success"][i])
        rows.append(
            {
                "id": int(cols["id"][i]),
                "task_id": tasks[cols["task"][i]].pk,
                "status": STATUSES[cols["status"][i]],
                "success": ok,
                "source": SOURCES[cols["source"][i]],
                "model": MODELS[cols["model"][i]],
                "cost_usd": float(cols["cost"][i]),
                "input_tokens": int(cols["input"][i]),
                "output_tokens": int(cols["output"][i]),
                "cache_read_input_tokens": int(cols["cache_read"][i]),
                "cache_creation_input_tokens": int(cols["cache_made"][i]),
                "num_turns": int(cols["turns"][i]),
                "duration_ms": int(cols["duration"][i]),
                "error": "" if ok else REASONS[cols["reason"][i]],
                "created_at": _dt(int(cols["created"][i])),
            }
        )
    return rows


def _example_rows(cols: dict[str, Any], reviewer: int, lo: int, hi: int) -> list[dict]:
    rows = []
    for i in range(lo, hi):
        reviewed = bool(cols["reviewed"][i])
        rows.append(
            {
                "id": int(cols["id"][i]),
                "execution_id": int(cols["id"][i]),
                "quality_score": float(cols["quality"][i]),
                "is_golden": bool(cols["golden"][i]),
                "validated": bool(cols["validated"][i]),
                "reviewer_id": reviewer if reviewed else None,
                "reviewed_at": _dt(int(cols["updated"][i])) if reviewed else None,
                "duplicate_of_id": 1 if cols["dup"][i] and i > 0 else None,
                "created_at": _dt(int(cols["created"][i])),
                "updated_at": _dt(int(cols["updated"][i])),
            }
        )
    return rows


def _insert(cursor: Any, model: Any, rows: list[dict]) -> None:
    """Rows with every other column at its model default (as the database stores it)."""
    from django.db import connection

    fields = [f for f in model._meta.concrete_fields if f.column not in rows[0]]
    fields = [f for f in fields if f.attname not in rows[0]]
    defaults = {f.column: f.get_db_prep_save(f.get_default(), connection) for f in fields}
    columns = [*rows[0], *defaults]
    table = model._meta.db_table
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"
    extra = tuple(defaults.values())
    cursor.executemany(sql, [(*row.values(), *extra) for row in rows])


def write_snapshot(cols: dict[str, Any], directory: Path) -> float:
    """The same examples as the engine's snapshot, written straight with pyarrow."""
    import numpy as np
    import pyarrow as pa

    from collection.models import TrainingExample
    from exports.analytics import snapshot

    started = time.perf_counter()
    n = cols["n"]
    ts = pa.timestamp("us", tz="UTC")
    tasks = [(c, d) for c in CATEGORIES for d in DIFFICULTIES]
    reviewed = cols["reviewed"]
    data = {
        "id": pa.array(cols["id"]),
        "updated_at": pa.array(cols["updated"], ts),
        "created_at": pa.array(cols["created"], ts),
        "quality": pa.array(cols["quality"]),
        "is_golden": pa.array(cols["golden"]),
        "validated": pa.array(cols["validated"]),
        "reviewer": pa.array(["bench-reviewer"] * n, pa.string(), mask=~reviewed),
        "reviewed_at": pa.array(cols["updated"], ts, mask=~reviewed),
        "tags": pa.nulls(n, pa.list_(pa.string())).fill_null(pa.scalar([], pa.list_(pa.string()))),
        "duplicate_of": pa.array(np.ones(n, "int64"), mask=~(cols["dup"] & (cols["id"] > 1))),
        "bad_steps": pa.array(np.zeros(n, "int32")),
        "execution_id": pa.array(cols["id"]),
        "category": pa.array([tasks[t][0] for t in cols["task"]], pa.string()),
        "difficulty": pa.array([tasks[t][1] for t in cols["task"]], pa.string()),
        "status": pa.array(np.array(STATUSES)[cols["status"]]),
        "success": pa.array(cols["success"]),
        "source": pa.array(np.array(SOURCES)[cols["source"]]),
        "model": pa.array(np.array(MODELS)[cols["model"]]),
        "cost_usd": pa.array(cols["cost"]),
        "input_tokens": pa.array(cols["input"]),
        "output_tokens": pa.array(cols["output"]),
        "cache_read_tokens": pa.array(cols["cache_read"]),
        "cache_creation_tokens": pa.array(cols["cache_made"]),
        "num_turns": pa.array(cols["turns"].astype("int32")),
        "duration_ms": pa.array(cols["duration"]),
        "failure_reason": pa.array(np.array(REASONS)[cols["reason"]], mask=cols["success"]),
        "conversation_tokens": pa.array(cols["conv_tokens"]),
        "tools": _tools(cols),
        "_version": pa.array(np.ones(n, "int64")),
        "_deleted": pa.array(np.zeros(n, bool)),
    }
    table = pa.table(data).cast(snapshot.SCHEMA)
    directory.mkdir(parents=True, exist_ok=True)
    snapshot._write_parquet(table, directory / "base-1.parquet")
    watermark = TrainingExample.objects.order_by("-updated_at").values_list("updated_at")[0][0]
    state = snapshot._new_state(1, ["base-1.parquet"], watermark, count=n, retired=[])
    snapshot._write_state(directory, state)
    return time.perf_counter() - started


def _tools(cols: dict[str, Any]) -> Any:
    """Each example's tool counts: tool_count distinct tools with a few calls each."""
    import numpy as np
    import pyarrow as pa

    from exports.analytics.snapshot import TOOL

    counts = cols["tool_count"]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype("int32")
    total = int(offsets[-1])
    rng = np.random.default_rng(3)
    names = pa.array(np.array(TOOLS)[rng.integers(0, len(TOOLS), total)])
    calls = rng.integers(1, 6, total).astype("int32")
    errors = (calls * (rng.random(total) < 0.15)).astype("int32")
    structs = pa.StructArray.from_arrays(
        [names, pa.array(calls), pa.array(errors)], fields=list(TOOL)
    )
    return pa.ListArray.from_arrays(pa.array(offsets), structs)


def add_examples(count: int) -> None:
    """New examples through the ORM, each with tool calls and a short trajectory."""
    from collection.models import Task
    from tests.factories import (
        assistant_payload,
        make_example,
        make_execution,
        make_message,
        make_tool_call,
    )

    task = Task.objects.first()
    for i in range(count):
        execution = make_execution(task, session_id=f"new-{i}", model="claude-sonnet-4-5")
        make_tool_call(execution, 1, name="Read")
        make_tool_call(execution, 2, name="Bash", is_error=i % 5 == 0)
        make_message(execution, {"type": "user", "message": {"role": "user", "content": "Fix"}})
        make_message(
            execution, assistant_payload([{"type": "text", "text": "ok"}], response=f"r{i}")
        )
        make_example(execution, quality_score=0.7)


def rereview(count: int) -> None:
    """Re-review existing examples the way the review service writes them (updated_at bumped)."""
    from django.utils import timezone

    from collection.models import TrainingExample

    ids = list(TrainingExample.objects.order_by("pk").values_list("pk", flat=True)[:count])
    TrainingExample.objects.filter(pk__in=ids).update(is_golden=True, updated_at=timezone.now())


# --- baseline ---------------------------------------------------------------------------------

BARE = [
    "SELECT count(*), count(*) FILTER (success), count(*) FILTER (is_golden), "
    "count(*) FILTER (validated), avg(quality), sum(cost_usd), sum(input_tokens + "
    "output_tokens + cache_read_tokens + cache_creation_tokens), "
    "count(*) FILTER (duplicate_of IS NOT NULL), count(*) FILTER (reviewed_at IS NOT NULL) FROM ex",
    "SELECT created_at::DATE d, count(*), count(*) FILTER (success), count(*) FILTER (is_golden) "
    "FROM ex GROUP BY d",
    "SELECT category, difficulty, count(*), avg(success::INT), avg(quality) FROM ex GROUP BY ALL",
    "SELECT least(floor(quality * 20), 19) b, count(*) FROM ex GROUP BY b",
    "SELECT model, count(*), sum(cost_usd), avg(cost_usd), sum(input_tokens), sum(output_tokens), "
    "sum(cache_read_tokens), sum(cache_creation_tokens) FROM ex GROUP BY model",
    "SELECT source, count(*), sum(cost_usd), avg(cost_usd), sum(input_tokens), "
    "sum(output_tokens), sum(cache_read_tokens), sum(cache_creation_tokens) "
    "FROM ex GROUP BY source",
    "SELECT floor(log2(conversation_tokens + 1)) b, count(*) FROM ex GROUP BY b",
    "SELECT t.name, sum(t.calls), sum(t.errors) FROM (SELECT unnest(tools) t FROM ex) GROUP BY 1",
    "SELECT num_turns, count(*) FROM ex GROUP BY num_turns",
    "SELECT floor(duration_ms / 60000) b, count(*) FROM ex GROUP BY b",
    "SELECT reviewer, count(*), count(*) FILTER (validated), count(*) FILTER (is_golden), "
    "sum(bad_steps) FROM ex WHERE reviewer IS NOT NULL GROUP BY reviewer",
    "SELECT failure_reason, count(*) FROM ex WHERE success IS NOT TRUE GROUP BY 1",
    "SELECT duplicate_of IS NOT NULL, count(*) FROM ex GROUP BY 1",
]


def bare(con: Any) -> None:
    for sql in BARE:
        con.execute(sql).fetchall()


# --- the run ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1_000_000)
    parser.add_argument("--new", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--full-rebuild", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the data dir")
    args = parser.parse_args()
    data = setup("trainingdash-bench-analytics-")
    try:
        run(args)
    finally:
        if args.keep:
            print(f"data dir kept: {data}")
        else:
            shutil.rmtree(data, ignore_errors=True)


def run(args: argparse.Namespace) -> None:
    import duckdb
    from django.conf import settings

    from collection.queries import ExampleFilters
    from exports.analytics import snapshot
    from exports.analytics.engine import get_analytics

    n, repeat = args.examples, args.repeat
    cols = generate(n)
    print(f"{n:,} examples: database rows in {insert_rows(cols):.1f} s", flush=True)
    directory = snapshot.snapshot_dir()
    print(f"snapshot written with pyarrow in {write_snapshot(cols, directory):.1f} s")
    del cols
    size = sum(p.stat().st_size for p in directory.glob("*.parquet")) / 2**20
    print(f"snapshot size: {size:.1f} MiB")

    nothing = snapshot.refresh_snapshot()
    assert nothing.changed == 0 and not nothing.full, nothing
    refresh_idle = best(snapshot.refresh_snapshot, repeat)

    files = snapshot.current_files(directory)
    con = duckdb.connect()
    con.execute(f"SET TimeZone = '{settings.TIME_ZONE}'")
    con.execute(f"CREATE VIEW ex AS SELECT * FROM read_parquet('{files[0]}')")
    get_analytics()  # warm (as a page that ran before)
    t_bare = best(lambda: bare(con), repeat)
    t_one = best(lambda: con.execute(BARE[0]).fetchall(), repeat)
    t_engine = best(get_analytics, repeat)
    t_engine_cached = best(lambda: get_analytics(refresh=False), repeat)
    debugging = ExampleFilters(category="debugging", min_quality=0.5)
    t_filtered = best(lambda: get_analytics(debugging, refresh=False), repeat)

    started = time.perf_counter()
    mem = duckdb.connect()
    mem.execute(f"SET TimeZone = '{settings.TIME_ZONE}'")
    mem.execute(f"CREATE TABLE ex AS SELECT * FROM read_parquet('{files[0]}')")
    t_load = time.perf_counter() - started
    t_mem = best(lambda: bare(mem), repeat)
    mem.close()

    print()
    print(f"bare DuckDB, the 13 summary/breakdown queries over the file: {t_bare * 1000:8.1f} ms")
    print(f"bare DuckDB, the summary query alone:                         {t_one * 1000:8.1f} ms")
    print(
        f"get_analytics(refresh=True)   (page's call, nothing new):     {t_engine * 1000:8.1f} ms"
        f"  = {t_engine / t_bare:.2f}x bare (target < 2x)"
    )
    print(
        f"get_analytics(refresh=False):                                 "
        f"{t_engine_cached * 1000:8.1f} ms  = {t_engine_cached / t_bare:.2f}x bare"
    )
    print(
        f"get_analytics(category + min_quality filter, refresh=False):  {t_filtered * 1000:8.1f} ms"
    )
    print(
        "refresh with nothing changed:                                 "
        f"{refresh_idle * 1000:8.1f} ms"
    )
    print(
        f"Arrow/in-memory table instead: load {t_load * 1000:.0f} ms per process and version, "
        f"then the 13 queries in {t_mem * 1000:.1f} ms ({t_mem / t_bare:.2f}x the file)"
    )

    with_index = indexed_refresh(repeat)
    print(
        f"with an index on updated_at (a migration the schema lacks; made here): refresh with "
        f"nothing changed {with_index[0] * 1000:.1f} ms, get_analytics(refresh=True) "
        f"{with_index[1] * 1000:.1f} ms = {with_index[1] / t_bare:.2f}x bare"
    )

    print()
    add_examples(args.new)
    stats = snapshot.refresh_snapshot()
    written = (directory / stats.files[-1]).stat().st_size / 1024
    print(
        f"refresh after {args.new:,} new examples: {stats.seconds * 1000:.0f} ms, "
        f"{stats.changed:,} rows written ({written:.0f} KiB, full={stats.full})"
    )
    assert get_analytics(refresh=False).summary["total_examples"] == n + args.new
    rereview(args.new)
    stats = snapshot.refresh_snapshot()
    print(
        f"refresh after {args.new:,} re-reviews:   {stats.seconds * 1000:.0f} ms, "
        f"{stats.changed:,} rows written (full={stats.full})"
    )
    t_after = best(lambda: get_analytics(refresh=False), repeat)
    print(f"get_analytics(refresh=False) with 2 delta files: {t_after * 1000:.1f} ms")
    started = time.perf_counter()
    snapshot.compact(directory, snapshot.read_state(directory) or {})
    print(f"compaction into one base file: {(time.perf_counter() - started) * 1000:.0f} ms")

    print()
    page(repeat)
    if args.full_rebuild:
        stats = snapshot.refresh_snapshot(full=True)
        print(f"full rebuild from the database: {stats.seconds:.1f} s for {stats.changed:,} rows")


def indexed_refresh(repeat: int) -> tuple[float, float]:
    """Refresh and get_analytics timed again with an index on TrainingExample.updated_at."""
    from django.db import connection

    from exports.analytics import snapshot
    from exports.analytics.engine import get_analytics

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE INDEX bench_example_updated_idx ON collection_trainingexample (updated_at)"
        )
    return best(snapshot.refresh_snapshot, repeat), best(get_analytics, repeat)


def page(repeat: int) -> None:
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test import Client, override_settings
    from django.urls import NoReverseMatch, reverse

    from collection.roles import ADMIN, assign_role, sync_roles

    try:
        url = reverse("analytics-index")
    except NoReverseMatch:
        print("analytics page: missing (no URL named analytics-index)")
        return
    sync_roles()
    admin = User.objects.create_user("bench-admin", password="x")
    assign_role(admin, ADMIN)
    client = Client(HTTP_HOST="localhost")
    client.force_login(admin)
    # No collectstatic here: plain static storage, as in development.
    plain = settings.STORAGES | {
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    }
    times = []
    with override_settings(STORAGES=plain):
        status = client.get(url).status_code
        for _ in range(repeat):
            started = time.perf_counter()
            client.get(url)
            times.append(time.perf_counter() - started)
    print(
        f"GET {url}: HTTP {status}, server time best {min(times) * 1000:.0f} ms, "
        f"median {statistics.median(times) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
