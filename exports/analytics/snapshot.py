"""Parquet snapshots of the system of record, for DuckDB to aggregate.

    stats = refresh_snapshot()        # incremental: only what changed since the last refresh
    refresh_snapshot(wait=False)      # None at once if another process is refreshing
    files = current_files()           # the Parquet files DuckDB reads (base + deltas)
    snapshot_as_of()                  # when the data it holds was read from the database

One row per training example, with what the analytics need from its execution, task, reviewer,
step marks, tool calls and exported conversation (`SCHEMA`). A directory per database under
`settings.DATA_DIR / "analytics"`:

    base-<n>.parquet     every example as of compaction n
    delta-<v>.parquet    the rows changed (or deleted: `_deleted`) in refresh v
    state.json           the files in use, the watermark, the version, `as_of`; replaced atomically
    lock                 flock'ed by the one process refreshing at a time

Why this shape (`bench/analytics.py`, measured on this machine, SQLite):
- Incremental, not a full rebuild: a full rebuild reads every row again and rebuilds every
  exported conversation to count its tokens: 17.9 s at 100k examples (about 3 minutes at 1M).
  At 1M, a refresh after 1,000 new examples took 273 ms (1,000 rows, a 21 KiB file), after
  1,000 re-reviews 380 ms, with nothing changed 88 ms (11 ms with an index on `updated_at`).
- Parquet files, not Arrow tables held in memory: every process (web workers, the export
  worker, a script) reads the same files and nothing is loaded per process. At 1M, the 13
  bare queries took 378 ms over the file and 285 ms over an in-memory table, but loading that
  table took 583 ms, paid again by every process after every refresh that changed something.
- What changed is found by `updated_at` (which review, scoring and step marks bump). A window
  of `LAG` before the watermark is looked at again so that a transaction that committed late
  is not missed, but only its keys, (updated_at, id), read from the index on them: a row is
  read in full only when its key is not in the snapshot as it is. (Reading the whole window
  again made every refresh under steady writes re-read, compare and hash 5 minutes of rows:
  15,000 at 50 writes a second.) New, missing or deleted rows that the watermark cannot see
  are caught by comparing counts, then ids.
- Deltas are merged into a new base (compaction) once they pass `COMPACT_ROWS` rows or
  `COMPACT_FILES` files; files a compaction replaced are removed at the next one, so a reader
  that read the previous state.json still finds them.

Known gap: a change that leaves `updated_at` alone (`collection.duplicates.regroup` marks
duplicates with `update()`) shows after the next `refresh_snapshot(full=True)`.

Pages do not refresh in the request (`exports.analytics.freshness`): they read the snapshot as
it is and start a background refresh when it is old.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, overload

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from django.conf import settings
from django.db import connection
from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from collection.models import Execution, ToolCall, TrainingExample

SCHEMA_VERSION = 1
# Rows written in a transaction that commits this long after its `updated_at` are still seen.
LAG = timedelta(minutes=5)
CHUNK = 2000
COMPACT_ROWS = 50_000
COMPACT_FILES = 32
REASON_LENGTH = 120

TOOL = pa.struct([("name", pa.string()), ("calls", pa.int32()), ("errors", pa.int32())])
# The columns compared to decide whether a re-read row changed (all but the costly ones, which
# only change with the trajectory, and a closed trajectory does not change).
CHEAP = [
    ("id", pa.int64()),
    ("updated_at", pa.timestamp("us", tz="UTC")),
    ("created_at", pa.timestamp("us", tz="UTC")),
    ("quality", pa.float64()),
    ("is_golden", pa.bool_()),
    ("validated", pa.bool_()),
    ("reviewer", pa.string()),
    ("reviewed_at", pa.timestamp("us", tz="UTC")),
    ("tags", pa.list_(pa.string())),
    ("duplicate_of", pa.int64()),
    ("bad_steps", pa.int32()),
    ("execution_id", pa.int64()),
    ("category", pa.string()),
    ("difficulty", pa.string()),
    ("status", pa.string()),
    ("success", pa.bool_()),
    ("source", pa.string()),
    ("model", pa.string()),
    ("cost_usd", pa.float64()),
    ("input_tokens", pa.int64()),
    ("output_tokens", pa.int64()),
    ("cache_read_tokens", pa.int64()),
    ("cache_creation_tokens", pa.int64()),
    ("num_turns", pa.int32()),
    ("duration_ms", pa.int64()),
]
COSTLY = [
    ("failure_reason", pa.string()),
    ("conversation_tokens", pa.int64()),
    ("tools", pa.list_(TOOL)),
]
SCHEMA = pa.schema(CHEAP + COSTLY + [("_version", pa.int64()), ("_deleted", pa.bool_())])
CHEAP_SCHEMA = pa.schema(CHEAP)
# The ORM lookups behind CHEAP, in order.
LOOKUPS = (
    "id",
    "updated_at",
    "created_at",
    "quality_score",
    "is_golden",
    "validated",
    "reviewer__username",
    "reviewed_at",
    "tags",
    "duplicate_of_id",
    "marks",
    "execution_id",
    "execution__task__category",
    "execution__task__difficulty",
    "execution__status",
    "execution__success",
    "execution__source",
    "execution__model",
    "execution__cost_usd",
    "execution__input_tokens",
    "execution__output_tokens",
    "execution__cache_read_input_tokens",
    "execution__cache_creation_input_tokens",
    "execution__num_turns",
    "execution__duration_ms",
)


@dataclass
class RefreshStats:
    """What a refresh did: rows written, whether it rebuilt or compacted, how long it took."""

    version: int
    changed: int
    deleted: int
    full: bool
    compacted: bool
    seconds: float
    files: list[str]


# --- where ------------------------------------------------------------------------------------


def snapshot_dir() -> Path:
    """This database's snapshot directory: one per database, so that a test database, a
    PostgreSQL and a SQLite never share (or overwrite) each other's snapshot."""
    db = connection.settings_dict
    key = f"{db.get('HOST', '')}:{db.get('PORT', '')}/{db['NAME']}"
    name = f"{connection.vendor}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    return Path(settings.DATA_DIR) / "analytics" / name


def read_state(directory: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((directory / "state.json").read_text())
    except FileNotFoundError:
        return None
    return state if state.get("schema") == SCHEMA_VERSION else None


def current_files(directory: Path | None = None) -> list[Path]:
    """The snapshot's Parquet files as of now (base first, then deltas in order)."""
    directory = directory or snapshot_dir()
    return files_of(directory, read_state(directory))


def files_of(directory: Path, state: dict[str, Any] | None) -> list[Path]:
    return [directory / name for name in state["files"]] if state else []


def as_of(state: dict[str, Any] | None) -> datetime | None:
    """When the last refresh of this state began reading the database: what was committed
    then is in the snapshot."""
    return datetime.fromisoformat(state["as_of"]) if state and state.get("as_of") else None


def snapshot_as_of(directory: Path | None = None) -> datetime | None:
    return as_of(read_state(directory or snapshot_dir()))


def _write_state(directory: Path, state: dict[str, Any]) -> None:
    tmp = directory / f".state-{os.getpid()}.json"
    tmp.write_text(json.dumps(state, indent=1))
    os.replace(tmp, directory / "state.json")  # atomic: readers see the old or the new state


class Busy(Exception):
    """Another process (or thread) holds the snapshot's lock."""


@contextmanager
def _locked(directory: Path, *, wait: bool = True) -> Iterator[None]:
    """One refreshing process per snapshot at a time: the others wait (then find little to
    do), or with `wait=False` raise Busy at once."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError as exc:
            raise Busy(str(directory)) from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_parquet(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


# --- reading rows from the system of record --------------------------------------------------


def _cheap_rows(examples: QuerySet[TrainingExample]) -> pa.Table:
    rows = examples.annotate(marks=Count("step_marks")).order_by().values_list(*LOOKUPS)
    columns = list(zip(*rows, strict=True)) or [()] * len(CHEAP)
    arrays = [pa.array(list(col), type=t) for col, (_, t) in zip(columns, CHEAP, strict=True)]
    return pa.Table.from_arrays(arrays, schema=CHEAP_SCHEMA)


def _costly_columns(cheap: pa.Table) -> dict[str, list[Any]]:
    """Failure reasons, conversation tokens and tool counts of these rows, in their order."""
    ids = cheap.column("id").to_pylist()
    executions = cheap.column("execution_id").to_pylist()
    passed = _successes(cheap)
    reasons = _failure_reasons([e for e, ok in zip(executions, passed, strict=True) if not ok])
    tokens = conversation_tokens(ids)
    tools = _tools(executions)
    return {
        "failure_reason": [reasons.get(e) for e in executions],
        "conversation_tokens": [tokens.get(i, 0) for i in ids],
        "tools": [tools.get(e, []) for e in executions],
    }


def _successes(cheap: pa.Table) -> list[bool]:
    return [bool(s) for s in cheap.column("success").to_pylist()]


def _failure_reasons(execution_ids: list[int]) -> dict[int, str]:
    """Why each session did not pass, in one line (`Execution.failure_line`, else its verdict)."""
    found: dict[int, str] = {}
    fields = ("id", "status", "success", "error", "performance_metrics")
    for execution in Execution.objects.filter(pk__in=execution_ids).only(*fields).iterator(CHUNK):
        line = execution.failure_line or execution.verdict
        found[execution.pk] = line[:REASON_LENGTH]
    return found


def _tools(execution_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    calls = (
        ToolCall.objects.filter(execution_id__in=execution_ids)
        .values("execution_id", "name")
        .annotate(calls=Count("id"), errors=Count("id", filter=Q(is_error=True)))
        .order_by("execution_id", "name")
    )
    found: dict[int, list[dict[str, Any]]] = {}
    for row in calls:
        found.setdefault(row["execution_id"], []).append(
            {"name": row["name"], "calls": row["calls"], "errors": row["errors"]}
        )
    return found


def conversation_tokens(example_ids: list[int]) -> dict[int, int]:
    """Estimated tokens of each example's exported conversation: the chat JSONL row an export
    writes (coordinator only, duplicates kept, no redaction: redaction barely changes length),
    counted as exports count them (`exports.validation.estimate_tokens`)."""
    from exports.formats import get_format
    from exports.options import ExportOptions
    from exports.records import load_records
    from exports.validation import estimate_tokens

    options = ExportOptions(subagents="coordinator_only", exclude_duplicates=False, redact=False)
    records = load_records(TrainingExample.objects.filter(pk__in=example_ids), options)
    chat = get_format("jsonl")
    found: dict[int, int] = {}
    for record in records:
        for row in chat.rows([record], options):
            found[record.example_id] = found.get(record.example_id, 0) + estimate_tokens(row)
    return found


def _full_rows(cheap: pa.Table, version: int) -> pa.Table:
    costly = _costly_columns(cheap)
    n = cheap.num_rows
    arrays = [*cheap.columns]
    arrays += [pa.array(costly[name], type=t) for name, t in COSTLY]
    arrays += [pa.array([version] * n, pa.int64()), pa.array([False] * n, pa.bool_())]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def _tombstones(ids: list[int], version: int) -> pa.Table:
    columns = {name: pa.nulls(len(ids), type=t) for name, t in SCHEMA_FIELDS}
    columns["id"] = pa.array(ids, pa.int64())
    columns["_version"] = pa.array([version] * len(ids), pa.int64())
    columns["_deleted"] = pa.array([True] * len(ids), pa.bool_())
    return pa.table(columns, schema=SCHEMA)


SCHEMA_FIELDS = [(f.name, f.type) for f in SCHEMA]


def _in_chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def _full_rows_of(cheap: pa.Table, version: int) -> Iterator[pa.Table]:
    """Rows already read (their cheap columns), completed a chunk at a time."""
    for start in range(0, cheap.num_rows, CHUNK):
        yield _full_rows(cheap.slice(start, CHUNK), version)


def _rows_for(ids: list[int], version: int) -> Iterator[pa.Table]:
    for chunk in _in_chunks(ids):
        yield _full_rows(_cheap_rows(TrainingExample.objects.filter(pk__in=chunk)), version)


# --- the snapshot as DuckDB sees it ------------------------------------------------------------


def examples_sql(files: list[Path], latest: str | None = None) -> str:
    """SQL for the current examples over the snapshot files: the base rows not replaced by a
    delta, plus each id's latest delta row unless it is a deletion. `latest` names a table
    already holding `latest_sql(files)` (read once instead of by every query)."""
    if not files:
        names = ", ".join(f"NULL::{_duck_type(t)} AS {n}" for n, t in SCHEMA_FIELDS)
        return f"SELECT {names} WHERE false"
    base, deltas = files[0], files[1:]
    if not deltas:
        return f"SELECT * FROM read_parquet('{base}')"
    with_latest = "" if latest else f"WITH latest AS ({latest_sql(files)}) "
    latest = latest or "latest"
    return (
        f"{with_latest}SELECT b.* FROM read_parquet('{base}') b ANTI JOIN {latest} USING (id) "
        f"UNION ALL SELECT * FROM {latest} WHERE NOT _deleted"
    )


def latest_sql(files: list[Path]) -> str:
    """Each id's newest row among the delta files."""
    listed = ", ".join(f"'{path}'" for path in files[1:])
    return (
        f"SELECT * FROM read_parquet([{listed}]) "
        "QUALIFY row_number() OVER (PARTITION BY id ORDER BY _version DESC) = 1"
    )


def _duck_type(t: pa.DataType) -> str:
    simple = {pa.int64(): "BIGINT", pa.int32(): "INTEGER", pa.float64(): "DOUBLE"}
    simple |= {pa.bool_(): "BOOLEAN", pa.string(): "VARCHAR"}
    if t in simple:
        return simple[t]
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ"
    if t == pa.list_(pa.string()):
        return "VARCHAR[]"
    return "STRUCT(name VARCHAR, calls INTEGER, errors INTEGER)[]"


# --- refreshing -----------------------------------------------------------------------------


@overload
def refresh_snapshot(
    *, full: bool = False, directory: Path | None = None, wait: Literal[True] = True
) -> RefreshStats: ...


@overload
def refresh_snapshot(
    *, full: bool = False, directory: Path | None = None, wait: bool
) -> RefreshStats | None: ...


def refresh_snapshot(
    *, full: bool = False, directory: Path | None = None, wait: bool = True
) -> RefreshStats | None:
    """Bring the snapshot up to date with the database: only what changed since the last
    refresh, or everything with `full` (or when there is no snapshot yet). With `wait=False`,
    None at once when another process is refreshing it (it will be as fresh when it is done)."""
    directory = directory or snapshot_dir()
    started = time.perf_counter()
    try:
        with _locked(directory, wait=wait):
            state = None if full else read_state(directory)
            if state is None:
                state, changed, deleted = _rebuild(directory, state_before=read_state(directory))
                compacted, is_full = False, True
            else:
                changed, deleted = _apply_changes(directory, state)
                compacted = _maybe_compact(directory, state)
                is_full = False
    except Busy:
        return None
    seconds = time.perf_counter() - started
    return RefreshStats(
        state["version"], changed, deleted, is_full, compacted, seconds, state["files"]
    )


def ensure_snapshot(directory: Path | None = None) -> None:
    """Build the snapshot if there is none yet (whoever comes first builds it; the others
    wait for it, once)."""
    directory = directory or snapshot_dir()
    if read_state(directory) is not None:
        return
    with _locked(directory):
        if read_state(directory) is None:
            _rebuild(directory, state_before=None)


def _rebuild(
    directory: Path, state_before: dict[str, Any] | None
) -> tuple[dict[str, Any], int, int]:
    """Every example again, into a new base file, streamed a chunk at a time."""
    version = (state_before or {}).get("version", 0) + 1
    name = f"base-{version}.parquet"
    reading = timezone.now()
    tmp = directory / f".{name}.{os.getpid()}.tmp"
    ids = list(TrainingExample.objects.order_by("pk").values_list("pk", flat=True))
    with pq.ParquetWriter(tmp, SCHEMA, compression="zstd") as writer:
        for table in _rows_for(ids, version):
            writer.write_table(table)
    os.replace(tmp, directory / name)
    watermark = TrainingExample.objects.aggregate(m=Max("updated_at"))["m"]
    old = (state_before or {}).get("files", []) + (state_before or {}).get("retired", [])
    state = _new_state(version, [name], watermark, count=len(ids), retired=old)
    state["as_of"] = reading.isoformat()
    _write_state(directory, state)
    return state, len(ids), 0


def _new_state(
    version: int, files: list[str], watermark: datetime | None, *, count: int, retired: list[str]
) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "version": version,
        "files": files,
        "retired": retired,
        "watermark": watermark.isoformat() if watermark else None,
        "count": count,
        "delta_rows": 0,
        "as_of": None,
    }


def _apply_changes(directory: Path, state: dict[str, Any]) -> tuple[int, int]:
    """Write one delta file with the rows that changed; returns (changed, deleted).

    Nothing changed costs two small queries (a count, and the keys in the window before the
    watermark, read from the index on (updated_at, id)) and one DuckDB join of those keys."""
    reading = timezone.now()
    db_count = TrainingExample.objects.count()
    keys = _window_keys(state)
    files = [directory / f for f in state["files"]]
    con = duckdb.connect()
    unseen = _unseen(con, files, keys)
    changed_ids: list[int] = []
    deleted: list[int] = []
    if unseen or db_count != state["count"]:
        version = state["version"] + 1
        fresh = _cheap_rows_of(unseen)
        changed_ids = _changed(con, files, fresh)
        missing: list[int] = []
        if state["count"] + _count_new(con, files, changed_ids) != db_count:
            missing, deleted = _reconcile(con, files, changed_ids)
        if changed_ids or missing or deleted:
            changed = fresh.filter(pc.is_in(fresh.column("id"), pa.array(changed_ids, pa.int64())))
            parts = [*_full_rows_of(changed, version), *_rows_for(missing, version)]
            parts.append(_tombstones(deleted, version))
            changed_ids += missing
            name = f"delta-{version}.parquet"
            _write_parquet(pa.concat_tables(parts), directory / name)
            state.update(version=version, files=state["files"] + [name])
            state["delta_rows"] += len(changed_ids) + len(deleted)
    con.close()
    state.update(watermark=_watermark(keys, state), count=db_count, as_of=reading.isoformat())
    _write_state(directory, state)
    return len(changed_ids), len(deleted)


def _window_keys(state: dict[str, Any]) -> pa.Table:
    """(id, updated_at) of every example changed in the window before the watermark."""
    rows = TrainingExample.objects.order_by()
    if state["watermark"]:
        since = datetime.fromisoformat(state["watermark"]) - LAG
        rows = rows.filter(updated_at__gte=since)
    found = list(rows.values_list("id", "updated_at"))
    return pa.table(
        {
            "id": pa.array([row[0] for row in found], pa.int64()),
            "updated_at": pa.array([row[1] for row in found], CHEAP[1][1]),
        }
    )


def _unseen(con: duckdb.DuckDBPyConnection, files: list[Path], keys: pa.Table) -> list[int]:
    """Ids whose key is not in the snapshot: new rows, and rows changed since it was taken."""
    if keys.num_rows == 0:
        return []
    con.register("window_keys", keys)
    # A constant, so that DuckDB skips the base's row groups that hold only older rows.
    since = f"'{min(keys.column('updated_at').to_pylist()).isoformat()}'::TIMESTAMPTZ"
    sql = (
        f"WITH e AS ({examples_sql(files)}) SELECT k.id FROM window_keys k ANTI JOIN "
        f"(SELECT id, updated_at FROM e WHERE updated_at >= {since}) s "
        "ON s.id = k.id AND s.updated_at = k.updated_at ORDER BY k.id"
    )
    ids = [row[0] for row in con.execute(sql).fetchall()]
    con.unregister("window_keys")
    return ids


def _cheap_rows_of(ids: list[int]) -> pa.Table:
    tables = [_cheap_rows(TrainingExample.objects.filter(pk__in=c)) for c in _in_chunks(ids)]
    return pa.concat_tables(tables) if tables else _cheap_rows(TrainingExample.objects.none())


def _watermark(keys: pa.Table, state: dict[str, Any]) -> str | None:
    if keys.num_rows == 0:
        return state["watermark"]
    newest: datetime = max(keys.column("updated_at").to_pylist())
    if state["watermark"]:
        newest = max(newest, datetime.fromisoformat(state["watermark"]))
    return newest.isoformat()


def _changed(con: duckdb.DuckDBPyConnection, files: list[Path], fresh: pa.Table) -> list[int]:
    """Ids of the re-read rows that are new or differ from the snapshot in a compared column."""
    con.register("fresh", fresh)
    differs = " OR ".join(f"f.{n} IS DISTINCT FROM e.{n}" for n, _ in CHEAP[1:])
    sql = (
        f"WITH e AS ({examples_sql(files)}), "
        # Bounds on the id let DuckDB skip the row groups of the (id-sorted) base.
        "b AS (SELECT min(id) lo, max(id) hi FROM fresh) "
        "SELECT f.id FROM fresh f LEFT JOIN "
        "(SELECT e.* FROM e, b WHERE e.id BETWEEN b.lo AND b.hi) e ON e.id = f.id "
        f"WHERE e.id IS NULL OR {differs} ORDER BY f.id"
    )
    ids = [row[0] for row in con.execute(sql).fetchall()]
    con.unregister("fresh")
    return ids


def _count_new(con: duckdb.DuckDBPyConnection, files: list[Path], ids: list[int]) -> int:
    """How many of `ids` the snapshot does not have yet."""
    if not ids:
        return 0
    con.register("ids", pa.table({"id": pa.array(ids, pa.int64())}))
    sql = (
        f"WITH e AS ({examples_sql(files)}) "
        "SELECT count(*) FROM ids WHERE id NOT IN (SELECT id FROM e)"
    )
    (found,) = con.execute(sql).fetchall()
    con.unregister("ids")
    return int(found[0])


def _reconcile(
    con: duckdb.DuckDBPyConnection, files: list[Path], changed: list[int]
) -> tuple[list[int], list[int]]:
    """Counts differ: compare every id. Returns (ids missing from the snapshot, ids gone from
    the database). Rare (deletions, a transaction that committed later than LAG)."""
    db_ids = TrainingExample.objects.order_by().values_list("pk", flat=True)
    con.register("db", pa.table({"id": pa.array(list(db_ids), pa.int64())}))
    con.register("changed", pa.table({"id": pa.array(changed, pa.int64())}))
    with_e = f"WITH e AS ({examples_sql(files)}) "
    missing = con.execute(
        with_e + "SELECT id FROM db WHERE id NOT IN (SELECT id FROM e) "
        "AND id NOT IN (SELECT id FROM changed) ORDER BY id"
    ).fetchall()
    gone = con.execute(
        with_e + "SELECT id FROM e WHERE id NOT IN (SELECT id FROM db) ORDER BY id"
    ).fetchall()
    return [r[0] for r in missing], [r[0] for r in gone]


def _maybe_compact(directory: Path, state: dict[str, Any]) -> bool:
    """Merge the deltas into a new base once there are many of them."""
    deltas = len(state["files"]) - 1
    if state["delta_rows"] < COMPACT_ROWS and deltas < COMPACT_FILES:
        return False
    compact(directory, state)
    return True


def compact(directory: Path, state: dict[str, Any]) -> None:
    """Write the current examples as one base file; the old files are retired, and removed at
    the next compaction (a reader may still be reading them now)."""
    for name in state.get("retired", []):
        (directory / name).unlink(missing_ok=True)
    files = [directory / f for f in state["files"]]
    name = f"base-{state['version']}c.parquet"
    tmp = directory / f".{name}.{os.getpid()}.tmp"
    con = duckdb.connect()
    con.execute(
        f"COPY ({examples_sql(files)} ORDER BY id) TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)"
    )
    con.close()
    os.replace(tmp, directory / name)
    state.update(files=[name], retired=state["files"], delta_rows=0)
    _write_state(directory, state)
