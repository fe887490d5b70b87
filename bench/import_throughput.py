"""Import benchmark: throughput against a raw-driver baseline, and memory as the input grows.

    .venv/bin/python bench/import_throughput.py [--copies 3] [--factor 10] [--length 1]
        [--database sqlite|postgresql|both] [--postgres postgres://postgres@127.0.0.1:5432/db]

Builds the input by replicating the JSONL fixture sessions (Claude Code transcripts, one with
its sub-agent folder, two sub-agent files on their own, stream-json logs) with fresh session
ids and uuids. Each size and database is measured in a fresh subprocess with its own database
(a throwaway SQLite file, or a PostgreSQL database created for the run and dropped after it):

- json.loads: only parses every line of the same files;
- raw executemany: parses them and inserts the same kinds of rows (a message per line, a tool
  call per tool use with its result, an action per tool use) with the database driver's own
  `executemany`, one transaction per file, no ORM: the floor import is measured against;
- import: `import_paths()`.

The fixture sessions are short (~60 KB), so at `--length 1` the fixed cost of each session
(opening, closing and scoring it) dominates; `--length 50` makes each Claude Code session 50
times longer (one session id, every other key renamed) to measure the cost per message.

Each size is measured `--repeat` times and each phase's fastest run kept. Prints MB/s and
sessions/s, import speed as a share of the raw baseline's (target: at least 0.5), and peak RSS
for `factor` times the input over peak RSS for the input (target: under 1.5).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "transcripts"
SUBAGENT_SESSION = "spotter__subagent.jsonl"
SUBAGENT_FILES = {"afb92ff": "spotter__subagent__agent-afb92ff.jsonl"}
ALONE = [
    "spotter__short.jsonl",
    "spotter__tool_heavy.jsonl",
    "spotter__agent-aac57f5.jsonl",
    "spotter__agent-acompact-946d2b.jsonl",
    "gleam__basic_query.ndjson",
    "gleam__tool_session.jsonl",
]
UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SESSION = re.compile(rb'"session_?[iI]d":\s*"([^"]+)"')
IDS = re.compile(rb"\b(?:toolu|msg)_[A-Za-z0-9]+")


# --- building the input ----------------------------------------------------------------------


def rewrite(source: Path, target: Path, copy: int, length: int = 1) -> None:
    """Copy a transcript line by line, every uuid replaced by this copy's own; with `length`,
    its lines `length` times over as one longer session (keys other than its id renamed)."""
    sessions = {m.group(1) for m in SESSION.finditer(source.read_bytes())}
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        for repeat in range(length):
            fresh = _renamer(copy, repeat, sessions)
            with source.open("rb") as src:
                for line in src:
                    line = UUID.sub(fresh, line)
                    out.write(IDS.sub(rb"\g<0>r%d" % repeat, line) if repeat else line)


def _renamer(copy: int, repeat: int, sessions: set[bytes]) -> Callable[[re.Match[bytes]], bytes]:
    def fresh(match: re.Match[bytes]) -> bytes:
        own = match.group() in sessions  # the session id stays one id across repeats
        namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"bench-{copy}-{0 if own else repeat}")
        return str(uuid.uuid5(namespace, match.group().decode())).encode()

    return fresh


def session_id(path: Path) -> str:
    with path.open() as fh:
        for line in fh:
            record = json.loads(line)
            if "sessionId" in record:
                return record["sessionId"]
    raise ValueError(f"no sessionId in {path}")


def build(root: Path, copies: int, length: int) -> Path:
    project = root / f"input-{copies}"
    for copy in range(copies):
        folder = project / f"copy-{copy}"
        for name in ALONE:
            # A stream-json log ends with its result: it is not made longer.
            rewrite(FIXTURES / name, folder / name, copy, length if "spotter" in name else 1)
        main = folder / "tmp-session.jsonl"
        rewrite(FIXTURES / SUBAGENT_SESSION, main, copy, length)
        sid = session_id(main)
        main.rename(folder / f"{sid}.jsonl")
        for agent_id, name in SUBAGENT_FILES.items():
            agent = folder / sid / "subagents" / f"agent-{agent_id}.jsonl"
            rewrite(FIXTURES / name, agent, copy, length)
    return project


def transcript_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


# --- one measurement, in a child process -----------------------------------------------------


def setup_django(postgres: str) -> Path:
    """A fresh database for this run: a SQLite data dir, or a new PostgreSQL database."""
    import django_env

    if not postgres:
        return django_env.setup("trainingdash-bench-import-", DEBUG="0")
    name = f"trainingdash_bench_{os.getpid()}"
    _admin(postgres, f"CREATE DATABASE {name}")
    # django_env drops DATABASE_URL (it is for SQLite): set it afterwards, then migrate again.
    data = django_env.setup("trainingdash-bench-import-", DEBUG="0")
    import dj_database_url
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    connections["default"].close()
    settings.DATABASES["default"] = dj_database_url.parse(postgres.rsplit("/", 1)[0] + "/" + name)
    connections.settings = connections.configure_settings(settings.DATABASES)
    del connections["default"]
    call_command("migrate", verbosity=0)
    return data


def _admin(postgres: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute(sql)


def drop_database(postgres: str) -> None:
    from django.db import connections

    connections.close_all()
    _admin(postgres, f"DROP DATABASE IF EXISTS trainingdash_bench_{os.getpid()}")


def child(folder: Path, postgres: str) -> None:
    data = setup_django(postgres)
    from collection.importers import import_paths

    files = transcript_files(folder)
    started = time.perf_counter()
    for path in files:
        with path.open("rb") as fh:
            for line in fh:
                json.loads(line)
    parsing = time.perf_counter() - started
    executions = baseline_executions(len(files))
    started = time.perf_counter()
    pairs = zip(files, executions, strict=True)
    rows = sum(raw_insert(path, execution) for path, execution in pairs)
    raw = time.perf_counter() - started
    started = time.perf_counter()
    report = import_paths([folder])
    imported = time.perf_counter() - started
    assert report.ok, report.summary()
    if postgres:
        drop_database(postgres)
    shutil.rmtree(data, ignore_errors=True)
    print(
        json.dumps(
            {
                "bytes": sum(p.stat().st_size for p in files),
                "sessions": report.imported,
                "baseline_s": parsing,
                "raw_s": raw,
                "raw_rows": rows,
                "import_s": imported,
                "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        )
    )


# --- the raw-driver baseline -----------------------------------------------------------------


def baseline_executions(count: int) -> list[int]:
    """One execution per file for the baseline's rows, made before its clock starts."""
    from collection.models import Execution, Source, Task

    task = Task.objects.create(name="raw executemany baseline", category="bench")
    made = Execution.objects.bulk_create(
        Execution(task=task, source=Source.IMPORTED, session_id=f"raw-{i}") for i in range(count)
    )
    return [e.pk for e in made]


def raw_insert(path: Path, execution: int) -> int:
    """Parse one file and insert its rows with the driver's executemany; returns the rows."""
    from django.db import connection

    messages, calls, actions = raw_rows(path, execution)
    connection.ensure_connection()
    raw = connection.connection  # the driver's own connection: sqlite3 or psycopg
    mark, cast = ("%s", "::jsonb") if connection.vendor == "postgresql" else ("?", "")
    cursor = raw.cursor()
    for table, columns, jsons, values in (
        ("collection_message", MESSAGE_COLUMNS, {"payload"}, messages),
        ("collection_toolcall", CALL_COLUMNS, {"input", "result", "structured_result"}, calls),
        ("collection_agentaction", ACTION_COLUMNS, {"content"}, actions),
    ):
        marks = ", ".join(mark + (cast if c in jsons else "") for c in columns)
        cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", values)
    raw.commit()
    return len(messages) + len(calls) + len(actions)


MESSAGE_COLUMNS = (
    "execution_id", "seq", "uuid", "type", "subtype", "parent_tool_use_id", "step", "payload",
    "created_at",
)  # fmt: skip
CALL_COLUMNS = (
    "execution_id", "tool_use_id", "name", "input", "result", "structured_result", "is_error",
    "parent_tool_use_id", "agent_id", "created_at",
)  # fmt: skip
ACTION_COLUMNS = (
    "execution_id", "agent_id", "role", "action_type", "tool_name", "content", "reasoning",
    "tool_use_id", "timestamp",
)  # fmt: skip


def raw_rows(path: Path, execution: int) -> tuple[list[tuple], list[tuple], list[tuple]]:
    now = datetime.now(tz=UTC).isoformat(sep=" ")
    messages: list[tuple] = []
    calls: dict[str, list[Any]] = {}
    actions: list[tuple] = []
    with path.open("rb") as fh:
        for seq, line in enumerate(fh, start=1):
            record = json.loads(line)
            kind, parent = str(record.get("type", "")), record.get("parent_tool_use_id") or ""
            messages.append(
                (execution, seq, f"line-{seq}", kind, "", parent, "", json.dumps(record), now)
            )
            for block in _blocks(record, "tool_use"):
                given = json.dumps(block.get("input") or {})
                name, call_id = block.get("name", ""), str(block["id"])
                calls[call_id] = [execution, call_id, name, given, None, None, None, parent]
                calls[call_id] += ["main", now]
                content = json.dumps({"input": block.get("input") or {}})
                action = ("main", "executor", "tool_use", name, content, "", call_id, now)
                actions.append((execution, *action))
            for block in _blocks(record, "tool_result"):
                answered = calls.get(str(block.get("tool_use_id")))
                if answered is not None:
                    structured = json.dumps(record.get("toolUseResult"))
                    result = json.dumps(block.get("content"))
                    answered[4:7] = [result, structured, bool(block.get("is_error"))]
    return messages, [tuple(c) for c in calls.values()], actions


def _blocks(record: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    message = record.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        return []
    blocks = [b for b in content if isinstance(b, dict) and b.get("type") == kind]
    return [b for b in blocks if kind != "tool_use" or "id" in b]


def measure(folder: Path, postgres: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(folder), "--postgres", postgres],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def best_of(folder: Path, postgres: str, repeat: int) -> dict[str, float]:
    """`repeat` measurements, each phase's fastest kept (a busy moment of the machine slows one
    run of one phase; the fastest is the closest to what the code costs), the largest peak RSS."""
    runs = [measure(folder, postgres) for _ in range(repeat)]
    best = dict(runs[0])
    for key in ("baseline_s", "raw_s", "import_s"):
        best[key] = min(run[key] for run in runs)
    best["peak_rss_kb"] = max(run["peak_rss_kb"] for run in runs)
    return best


def show(label: str, run: dict[str, float]) -> None:
    mb = run["bytes"] / 1e6
    print(
        f"{label:>14}: {mb:6.2f} MB, {run['sessions']:4d} sessions | "
        f"import {mb / run['import_s']:6.2f} MB/s, {run['sessions'] / run['import_s']:6.1f} "
        f"sessions/s | raw executemany {mb / run['raw_s']:6.2f} MB/s ({run['raw_rows']} rows) | "
        f"json.loads {mb / run['baseline_s']:7.1f} MB/s | "
        f"import/raw {run['raw_s'] / run['import_s']:.3f} (target >= 0.5) | "
        f"import/json.loads {run['baseline_s'] / run['import_s']:.4f} | "
        f"peak RSS {run['peak_rss_kb'] / 1024:.0f} MiB"
    )


def bench(database: str, postgres: str, copies: int, factor: int, length: int, repeat: int) -> None:
    url = postgres if database == "postgresql" else ""
    root = Path(tempfile.mkdtemp(prefix="trainingdash-bench-input-"))
    try:
        small = best_of(build(root, copies, length), url, repeat)
        large = best_of(build(root, copies * factor, length), url, repeat)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    show(f"{database} 1x", small)
    show(f"{database} {factor}x", large)
    ratio = large["peak_rss_kb"] / small["peak_rss_kb"]
    verdict = "flat" if ratio < 1.5 else "NOT flat"
    print(f"{database}: peak RSS {factor}x / 1x = {ratio:.2f} (target < 1.5: {verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=3, help="fixture sets in the small input")
    parser.add_argument("--factor", type=int, default=10, help="how much larger the big one is")
    parser.add_argument(
        "--length", type=int, default=1, help="Claude Code sessions made this many times longer"
    )
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--postgres",
        default="postgres://postgres@127.0.0.1:5432/postgres",
        help="a server URL allowed to create databases (one is made per run and dropped)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each size, fastest kept")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.postgres)
        return
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    for database in databases:
        bench(database, args.postgres, args.copies, args.factor, args.length, args.repeat)


if __name__ == "__main__":
    main()
