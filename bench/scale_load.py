"""Scale benchmark: pages under concurrent load at 1,000,000 examples on PostgreSQL, while a
background process keeps writing.

    .venv/bin/python bench/scale_load.py [--examples 1000000] [--clients 8] [--seconds 20]
        [--workers 4] [--write-rate 50] [--pg-url postgres://postgres@127.0.0.1:5432/postgres]
        [--keep | --reuse bench_scale_<pid>]

Fills a PostgreSQL database created for the run (`bench_scale_<pid>`, dropped after unless
`--keep`; filling 1,000,000 takes 20 to 50 minutes on 2 CPUs) with
`--examples` examples, a tenth with ~20-message trajectories (bench/review_data.py's bulk
generator), then starts the real WSGI app under gunicorn on loopback (`--workers` sync workers,
DEBUG off, manifest static files) and a writer process that adds `--write-rate` examples a
second (executions, examples, and for a tenth messages, tool calls and actions; one transaction
a second through review_data's generator). For each page -- the example list, the list filtered,
the review queue and the analytics page -- `--clients` threads of our own HTTP client, signed in
as an admin, request it back to back for `--seconds`; then the same number of threads run the
bare SQL statements that page runs (captured once from the page, re-run on raw cursors, rows
fetched) for the same time. Printed per page: requests, requests/s, errors (anything but 200, or
a failed connection), p50/p95 latency, the same for the bare SQL, and page/SQL ratios.

A filtered export (`exports.pipeline.run_export`, jsonl, category + min_quality) runs in this
process, under the writer's load, against the bare SQL it runs. The analytics page's baseline is
only its PostgreSQL statements: the DuckDB work over its snapshot is ours, not the database's.

`--reuse NAME` measures again over the database an earlier `--keep` run filled (with what its
writer added): no fill; it is migrated (a new index or column is built on the filled table) and
analysed, then measured the same way, and kept. With `--grow-to N` it first copies examples in
SQL until there are N: executions, examples and their trajectories (messages, tool calls,
agent actions), review events and step marks, each copy a new row with new ids (the copies are
the generated rows again: same shapes, dates and texts; a copy is nobody's duplicate). Filling
1,000,000 through the generator takes most of an hour on a busy 2-CPU machine; copying the
second half, a few minutes.

Also printed: gunicorn's resident memory (peak per worker and in all), the writer's achieved
rate, and EXPLAIN (ANALYZE, BUFFERS) of the slowest statement of each page whose median is over
`--explain-ms`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from review_pages import (  # noqa: E402
    ROOT,
    TRANSACTION_CONTROL,
    capture,
    drop_postgres,
    p95,
    setup_django,
)

PG_SERVER = "postgres://postgres@127.0.0.1:5432/postgres"
EXPORT_FILTER = {"category": "debugging", "min_quality": 0.8}


# --- the load --------------------------------------------------------------------------------


@dataclass
class Load:
    """What `--clients` threads saw for `--seconds`: one latency per request, and errors."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    first_error: str = ""

    def add(self, other: Load) -> None:
        self.latencies += other.latencies
        self.errors += other.errors
        self.first_error = self.first_error or other.first_error

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


def hammer(clients: int, seconds: float, one: Callable[[], Callable[[], None]]) -> Load:
    """`clients` threads, each calling its own `one()` callable back to back until time is up;
    a call that raises counts as an error (its time is not a latency)."""
    loads = [Load() for _ in range(clients)]
    deadline = time.perf_counter() + seconds

    def client(load: Load) -> None:
        call = one()
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                call()
            except Exception as exc:  # every failure is a row in the table, not a crash
                load.errors += 1
                load.first_error = load.first_error or f"{type(exc).__name__}: {exc}"[:160]
                continue
            load.latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(load,)) for load in loads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = Load(seconds=time.perf_counter() - started)
    for load in loads:
        total.add(load)
    return total


def http_getter(port: int, path: str, cookie: str) -> Callable[[], Callable[[], None]]:
    """A client per thread: GET `path` signed in, body read, anything but 200 raised."""

    def one() -> Callable[[], None]:
        def get() -> None:
            # gunicorn's sync workers close every connection: one connection per request.
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            try:
                conn.request("GET", path, headers={"Cookie": cookie, "Host": "127.0.0.1"})
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}")
            finally:
                conn.close()

        return get

    return one


def sql_runner(statements: list[tuple[str, Any, bool]]) -> Callable[[], Callable[[], None]]:
    """A raw cursor per thread (Django's connections are per thread) running the statements."""
    from django.db import connection

    runnable = [s for s in statements if not TRANSACTION_CONTROL.match(s[0])]

    def one() -> Callable[[], None]:
        def run() -> None:
            with connection.cursor() as cursor:
                raw = cursor.cursor  # the psycopg cursor under Django's wrapper
                for sql, params, many in runnable:
                    if many:
                        raw.executemany(sql, params)
                    else:
                        raw.execute(sql, params)
                    if raw.description is not None:
                        raw.fetchall()

        return run

    return one


# --- the processes -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_gunicorn(workers: int, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = os.environ | {"ALLOWED_HOSTS": "127.0.0.1,testserver"}
    command = [str(Path(sys.executable).parent / "gunicorn"), "trainingdash.wsgi:application"]
    command += ["--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--timeout", "300"]
    command += ["--error-logfile", str(log), "--log-level", "warning"]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}; see {log}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not listen within 60 s")


def start_writer(rate: int, seed: int) -> subprocess.Popen[str]:
    command = [sys.executable, __file__, "--writer", f"--write-rate={rate}", f"--seed={seed}"]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def memory_kb(pid: int) -> dict[int, tuple[int, int]]:
    """{pid: (VmRSS, VmHWM)} for the process and its children, in kB."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    found = {}
    for each in pids:
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except OSError:
            continue
        fields = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+)", status, re.M))
        found[each] = (int(fields.get("VmRSS", 0)), int(fields.get("VmHWM", 0)))
    return found


# --- the writer (a child process) ------------------------------------------------------------


def writer(rate: int, seed: int) -> None:
    """Add `rate` examples a second, one transaction a second, until SIGTERM; print the count."""
    sys.path.insert(0, str(ROOT))
    import trainingdash

    trainingdash.setup()
    from django.contrib.auth.models import User
    from review_data import Generator

    from collection.models import Task

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    gen = Generator(Random(seed), rate)
    gen.showcase_pending = False  # the pages' showcase example stays the one populate made
    gen.tasks = list(Task.objects.order_by("pk")[:2000])
    gen.world.reviewers = list(
        User.objects.filter(username__startswith="bench-reviewer-").values_list("pk", flat=True)
    )
    written, behind, started = 0, 0, time.perf_counter()
    # Without review_data.explicit_dates: created_at / updated_at are "now", as for real
    # writes, so the analytics snapshot's incremental refresh has new rows to pick up.
    while not stopping.is_set():
        tick = time.perf_counter()
        gen.make_chunk(rate)
        written += rate
        spent = time.perf_counter() - tick
        behind += spent > 1.0
        stopping.wait(max(0.0, 1.0 - spent))
    seconds = time.perf_counter() - started
    print(json.dumps({"written": written, "seconds": seconds, "late_ticks": behind}))


# --- one run -----------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    url: str
    page: Load = field(default_factory=Load)
    sql: Load = field(default_factory=Load)
    statements: list[tuple[str, Any, bool]] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)
    note: str = ""


def measure_page(row: Row, port: int, cookie: str, args: argparse.Namespace) -> None:
    from django.db import connections

    get = http_getter(port, row.url, cookie)
    # Each worker's first requests import and compile templates: not what is measured.
    hammer(args.clients, min(5.0, args.seconds / 4), get)
    row.page = hammer(args.clients, args.seconds, get)
    row.sql = hammer(args.clients, args.seconds, sql_runner(row.statements))
    connections.close_all()  # the threads' connections, before the database is dropped


def export_row(args: argparse.Namespace) -> Row:
    """run_export with a filter, `--export-repeat` times, against its own SQL re-run."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from collection.queries import filter_examples
    from exports.options import ExportOptions
    from exports.pipeline import run_export

    row = Row("export jsonl (filtered)", "run_export(category=debugging, min_quality=0.8)")
    statements: list[tuple[str, Any, bool]] = []

    def keep(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements.append((sql, params, many))
        return execute(sql, params, many, context)

    for i in range(args.export_repeat + 1):
        out = Path(tempfile.mkdtemp(prefix="trainingdash-bench-scale-export-"))
        try:
            started = time.perf_counter()
            if i == 0:  # the first run captures the statements (and warms the cache)
                with CaptureQueriesContext(connection) as queries, connection.execute_wrapper(keep):
                    result = run_export(
                        filter_examples(EXPORT_FILTER), "jsonl", ExportOptions(), out
                    )
                row.shown = [q["sql"] for q in queries.captured_queries]
                row.note = f"{result.written:,} examples written, {len(statements)} statements"
            else:
                run_export(filter_examples(EXPORT_FILTER), "jsonl", ExportOptions(), out)
                row.page.latencies.append((time.perf_counter() - started) * 1000)
        finally:
            shutil.rmtree(out, ignore_errors=True)
    row.statements = statements
    row.page.seconds = sum(row.page.latencies) / 1000
    run = sql_runner(statements)()
    for _ in range(args.export_repeat):
        started = time.perf_counter()
        run()
        row.sql.latencies.append((time.perf_counter() - started) * 1000)
    row.sql.seconds = sum(row.sql.latencies) / 1000
    return row


def explain(row: Row, threshold_ms: float) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the row's slowest statement, if it is slow."""
    from django.db import connection

    runnable = [
        (sql, params, shown)
        for (sql, params, many), shown in zip(row.statements, row.shown or [""] * 999, strict=False)
        if not many and not TRANSACTION_CONTROL.match(sql) and sql.lstrip().upper()[:6] == "SELECT"
    ]
    timed = []
    with connection.cursor() as cursor:
        for sql, params, shown in runnable:
            started = time.perf_counter()
            cursor.execute(sql, params)
            cursor.fetchall()
            timed.append(((time.perf_counter() - started) * 1000, sql, params, shown))
        if not timed:
            return []
        ms, sql, params, shown = max(timed, key=lambda t: t[0])
        if ms < threshold_ms:
            return []
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        plan = [line for (line,) in cursor.fetchall()]
    query = re.sub(r"\s+", " ", shown or sql)
    return [f"  {row.name}: {ms:.1f} ms  {query}", *(f"    {line}" for line in plan)]


def fmt(load: Load) -> str:
    if not load.latencies:
        return f"{'-':>7}{'-':>9}{'-':>9}{'-':>9}"
    return (
        f"{len(load.latencies):>7}{load.rate:>9.1f}"
        f"{statistics.median(load.latencies):>9.1f}{p95(load.latencies):>9.1f}"
    )


def print_table(rows: list[Row], clients: int) -> None:
    print(
        f"\n{'page':<26}{'req':>7}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'err':>5}"
        f" | {'SQL runs':>8}{'runs/s':>9}{'p50 ms':>9}{'p95 ms':>9}"
        f" | {'p50 x':>7}{'p95 x':>7}{'rate x':>8}"
    )
    for row in rows:
        page, sql = row.page, row.sql
        ratios = ""
        if page.latencies and sql.latencies:
            p50x = statistics.median(page.latencies) / max(statistics.median(sql.latencies), 1e-3)
            p95x = p95(page.latencies) / max(p95(sql.latencies), 1e-3)
            ratex = sql.rate / max(page.rate, 1e-9)
            ratios = f"{p50x:>7.1f}{p95x:>7.1f}{ratex:>8.1f}"
        print(f"{row.name:<26}{fmt(page)}{page.errors:>5} | {fmt(sql)} | {ratios}")
        if page.first_error:
            print(f"  first error: {page.first_error}")
        if row.note:
            print(f"  {row.note}")
    print(
        f"({clients} clients per page; 'p50 x'/'p95 x' = page / bare SQL latency, 'rate x' = "
        "bare SQL runs/s over page requests/s, both at the same concurrency)"
    )


def report(args: argparse.Namespace, data: Path) -> None:
    from review_pages import populated, resolve

    world, client = reused() if args.reuse else populated(args)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    rows = [
        Row("list", "/examples/"),
        Row("list filtered", "/examples/?category=debugging&min_quality=0.5&is_golden=true"),
        Row("review queue", "/review/"),
        Row("analytics", "/analytics/"),
    ]
    if args.pages:
        rows = [row for row in rows if row.name in args.pages]
    started = time.perf_counter()
    for row in rows:  # the final URL (the queue may redirect), its statements, a warm cache
        response, url = resolve(client, row.url)
        row.url = url
        response, row.statements, row.shown = capture(client, row.url)
        if response.status_code != 200:
            row.note = f"in-process request answered {response.status_code}"
    warm = time.perf_counter() - started
    port = free_port()
    server = start_gunicorn(args.workers, port, data / "gunicorn.log")
    write = start_writer(args.write_rate, args.seed + 1)
    peak: dict[int, tuple[int, int]] = {}
    try:
        print(
            f"\nPostgreSQL: {world.examples:,} examples ({world.trajectories:,} with "
            f"trajectories, {world.messages:,} messages) "
            f"{'reused, counted' if args.reuse else 'generated'} in {world.seconds:.0f} s; "
            f"pages warmed in {warm:.0f} s (the first analytics request builds its snapshot); "
            f"gunicorn {args.workers} sync workers on 127.0.0.1:{port}; writer adding "
            f"{args.write_rate} examples/s; {os.cpu_count()} CPUs shared by clients, server, "
            f"writer and PostgreSQL",
            flush=True,
        )
        for row in rows:
            measure_page(row, port, cookie, args)
            peak |= memory_kb(server.pid)
            print(
                f"  measured {row.name}: {fmt(row.page)} | {fmt(row.sql)}",
                file=sys.stderr,
                flush=True,
            )
        if not args.pages or "export" in args.pages:
            rows.append(export_row(args))
        load = os.getloadavg()[0]
    finally:
        stop(write)
        written = write.stdout.read() if write.stdout else ""
        stop(server)
    print_table(rows, args.clients)
    workers = {pid: kb for pid, kb in peak.items() if pid != server.pid}
    if workers:
        print(
            f"gunicorn memory: peak {max(h for _r, h in workers.values()) / 1024:.0f} MB per "
            f"worker, {sum(r for r, _h in peak.values()) / 1024:.0f} MB resident in all "
            f"({len(workers)} workers + master); load average {load:.1f}"
        )
    print(f"writer: {written.strip() or 'no report (see its stderr)'}")
    print(f"\nslowest statement per page (EXPLAIN when its median is over {args.explain_ms} ms):")
    for row in rows:
        for line in explain(row, args.explain_ms):
            print(line)


# The tables copied by --grow-to, in order, and their foreign keys to tables copied with them.
COPIED: list[tuple[str, dict[str, str]]] = [
    ("collection_execution", {}),
    ("collection_message", {"execution_id": "collection_execution"}),
    (
        "collection_toolcall",
        {
            "execution_id": "collection_execution",
            "requested_in_id": "collection_message",
            "answered_in_id": "collection_message",
        },
    ),
    (
        "collection_agentaction",
        {"execution_id": "collection_execution", "parent_id": "collection_agentaction"},
    ),
    ("collection_trainingexample", {"execution_id": "collection_execution"}),
    ("collection_reviewevent", {"example_id": "collection_trainingexample"}),
    (
        "collection_stepmark",
        {"example_id": "collection_trainingexample", "message_id": "collection_message"},
    ),
]


def grow(target: int) -> None:
    """Copy examples (with everything that hangs off them) until there are `target`: each
    round copies the executions up to some id, every copied id moved by the table's largest."""
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        while (have := _count(cursor, "collection_trainingexample")) < target:
            started = time.perf_counter()
            cursor.execute(
                "SELECT execution_id FROM collection_trainingexample ORDER BY execution_id "
                "OFFSET %s LIMIT 1",
                [min(target - have, have) - 1],
            )
            (limit,) = cursor.fetchone()
            with transaction.atomic():
                cursor.execute("SET LOCAL session_replication_role = replica")  # ids are whole
                offsets = {t: _largest(cursor, t) for t, _ in COPIED}
                for table, keys in COPIED:
                    _copy(cursor, table, keys, offsets, limit)
            for table, _keys in COPIED:
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            print(
                f"  grew from {have:,} to {_count(cursor, 'collection_trainingexample'):,} "
                f"examples in {time.perf_counter() - started:.0f} s",
                file=sys.stderr,
                flush=True,
            )
        cursor.execute("VACUUM ANALYZE")  # as populate leaves a new database


def _count(cursor: Any, table: str) -> int:
    cursor.execute(f"SELECT count(*) FROM {table}")
    return int(cursor.fetchone()[0])


def _largest(cursor: Any, table: str) -> int:
    cursor.execute(f"SELECT coalesce(max(id), 0) FROM {table}")
    return int(cursor.fetchone()[0])


def _copy(
    cursor: Any, table: str, keys: dict[str, str], offsets: dict[str, int], limit: int
) -> None:
    cursor.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
        "AND is_generated = 'NEVER' ORDER BY ordinal_position",
        [table],
    )
    columns = [name for (name,) in cursor.fetchall()]
    moved = {"id": table, **keys}
    values = [f"{c} + {offsets[moved[c]]}" if c in moved else c for c in columns]
    if table == "collection_trainingexample":
        values = [
            "NULL" if c == "duplicate_of_id" else v for c, v in zip(columns, values, strict=True)
        ]
    if "execution_id" in columns or table == "collection_execution":
        where = f"{'id' if table == 'collection_execution' else 'execution_id'} <= {limit}"
    else:  # review events and step marks: those of the copied examples
        where = (
            "example_id IN (SELECT id FROM collection_trainingexample "
            f"WHERE execution_id <= {limit})"
        )
    cursor.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} FROM {table} "
        f"WHERE {where}"
    )


def reused() -> tuple[Any, Any]:
    """The database an earlier `--keep` run filled, migrated: analysed, counted, static files
    collected and an admin signed in, as `review_pages.populated` leaves a new one."""
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from review_data import World

    from collection.models import Message, TrainingExample
    from collection.roles import ADMIN, assign_role

    started = time.perf_counter()
    with connection.cursor() as cursor:
        # A migration may have rewritten every example: vacuumed as a settled table would be.
        cursor.execute("VACUUM ANALYZE collection_trainingexample")
        cursor.execute("ANALYZE")
    world = World(
        examples=TrainingExample.objects.count(),
        trajectories=Message.objects.order_by().values("execution_id").distinct().count(),
        messages=Message.objects.count(),
    )
    world.seconds = time.perf_counter() - started
    call_command("collectstatic", interactive=False, verbosity=0)
    admin, _ = User.objects.get_or_create(username="bench-admin")
    assign_role(admin, ADMIN)
    client = Client(raise_request_exception=False)
    client.force_login(admin)
    print(f"reusing {connection.settings_dict['NAME']} (migrated, analysed)", file=sys.stderr)
    return world, client


def run(args: argparse.Namespace) -> None:
    name = args.reuse or f"bench_scale_{os.getpid()}"
    url = args.pg_url.rsplit("/", 1)[0] + "/" + name
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")  # no embedded Redis
    started = time.perf_counter()
    data = setup_django("postgres", url, fresh=not args.reuse)
    if args.reuse:
        print(f"migrated {name} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        if args.grow_to:
            grow(args.grow_to)
    try:
        report(args, data)
    finally:
        from django.db import connections

        connections.close_all()
        shutil.rmtree(data, ignore_errors=True)
        if not (args.keep or args.reuse):
            drop_postgres(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients per page")
    parser.add_argument("--seconds", type=float, default=20.0, help="load time per page")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--write-rate", type=int, default=50, help="examples written a second")
    parser.add_argument("--export-repeat", type=int, default=3)
    parser.add_argument("--explain-ms", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pg-url", default=PG_SERVER, help="server; the database is made")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--reuse", metavar="NAME", help="measure a database a --keep run filled")
    parser.add_argument(
        "--grow-to", type=int, default=0, help="with --reuse: copy examples in SQL up to this many"
    )
    parser.add_argument(
        "--pages",
        type=lambda text: [name.strip() for name in text.split(",") if name.strip()],
        default=[],
        help='only these rows, comma-separated: "list", "list filtered", "review queue", '
        '"analytics", "export" (all without)',
    )
    parser.add_argument("--writer", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer:
        writer(args.write_rate, args.seed)
    else:
        run(args)


if __name__ == "__main__":
    main()
