"""Export benchmark: jsonl export throughput against a raw-cursor + orjson baseline, and peak
memory as the number of examples grows.

    .venv/bin/python bench/export_throughput.py                     # 10,000 and 100,000
    .venv/bin/python bench/export_throughput.py --examples 20000    # a quicker run (and 2,000)

For each size, a fresh SQLite database is filled (in its own subprocess) with examples that
all have full trajectories (bench/review_data.py's generator: ~20 stream-json messages with
tool calls, results of varied sizes, sub-agents, errors). Then, each in a fresh subprocess:

- baseline: the rows the export reads (per chunk: the examples with their executions, the
  messages, the tool calls; the same SQL) read with the database driver's cursor, their JSON
  parsed and written as one JSON line per example with orjson;
- export: `exports.pipeline.run_export(..., "jsonl")` (records, format, redaction, validation).

Each runs `--repeat` times, alternated, and the fastest of each is kept. Prints examples/s for
both, the export's speed as a share of the baseline's (target: at least 0.5 at the largest
size; also as CPU time, which a busy machine disturbs less), and each run's peak RSS; the
export's peak RSS at the largest size over its peak at the smallest (target: under 1.5 for 10x
the examples).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent


# --- the children (one job each, in a fresh process) -----------------------------------------


def _django(data: Path) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="trainingdash.settings",
        TRAININGDASH_DATA_DIR=str(data),
        SECRET_KEY="bench-only-" + "b" * 40,
        TRAININGDASH_HTTPS="0",
    )
    os.environ.pop("DATABASE_URL", None)
    sys.path[:0] = [str(ROOT), str(BENCH)]
    import trainingdash

    trainingdash.setup()


def populate_all_full(n: int) -> dict[str, Any]:
    """n examples, every one with a full trajectory (review_data's generator, every row full)."""
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from review_data import Generator, _date_fields, explicit_dates

    class FullGenerator(Generator):
        def make_chunk(self, size: int) -> None:
            self._write([(self.rng.choice(self.tasks), True) for _ in range(size)])

    from random import Random

    started = time.perf_counter()
    gen = FullGenerator(Random(1), n)
    with explicit_dates(*_date_fields()):
        gen.make_people_and_tasks()
        done = 0
        while done < n:
            size = min(2000, n - done)
            gen.make_chunk(size)
            done += size
    return {"messages": gen.world.messages, "seconds": time.perf_counter() - started}


def baseline(out: Path) -> dict[str, Any]:
    """Read the rows the export reads -- per chunk of examples, the examples with their
    executions and tasks, the messages and the tool calls, by the same SQL run on the raw
    driver cursor -- parse their JSON columns with orjson, and write one orjson line per
    example."""
    import orjson
    from django.db import connection

    from collection.models import TrainingExample
    from exports.records import CHUNK, call_rows, message_rows

    def run(queryset: Any) -> list[tuple[Any, ...]]:
        sql, params = queryset.query.get_compiler(using=queryset.db).as_sql()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def parsed(value: Any) -> Any:
        return orjson.loads(value) if isinstance(value, str) else value

    examples_sql = TrainingExample.objects.select_related("execution__task").defer("search_text")
    examples, last = 0, 0
    gc.disable()  # as the export does: no collector scanning what is parsed (see pipeline)
    with out.open("wb") as target:
        while chunk := run(examples_sql.filter(pk__gt=last).order_by("pk")[:CHUNK]):
            last = chunk[-1][0]
            ids = [row[1] for row in chunk]  # execution_id follows id in the select
            messages: dict[int, list[Any]] = {}
            for row in run(message_rows(ids)):
                messages.setdefault(row[1], []).append(parsed(row[5]))
            calls: dict[int, list[Any]] = {}
            for row in run(call_rows(ids)):
                # the input stays text: the export parses it only for a sub-agent's prompt
                calls.setdefault(row[0], []).append([row[1], parsed(row[3]), row[5]])
            for row in chunk:
                line = {"example": [str(v) for v in row], "messages": messages.get(row[1], [])}
                line["calls"] = calls.get(row[1], [])
                target.write(orjson.dumps(line) + b"\n")
                examples += 1
            gc.collect(1)
    return {"examples": examples}


def export(out: Path) -> dict[str, Any]:
    from collection.models import TrainingExample
    from exports.options import ExportOptions
    from exports.pipeline import run_export

    # Every example counts: the generator marks ~2% duplicates, which would be left out.
    options = ExportOptions(exclude_duplicates=False)
    result = run_export(TrainingExample.objects.all(), "jsonl", options, out)
    # Examples, as the baseline counts (a sub-agent's conversation is a row of its own too).
    examples = TrainingExample.objects.count() - sum(result.left_out.values())
    return {"examples": examples, "rows": result.written, "left_out": result.left_out}


def child(mode: str, data: Path, n: int) -> None:
    _django(data)
    started, cpu = time.perf_counter(), time.process_time()
    if mode == "populate":
        info = populate_all_full(n)
    elif mode == "baseline":
        info = baseline(data / "baseline.jsonl")
    else:
        info = export(data / "export")
    info["seconds"] = time.perf_counter() - started
    info["cpu_seconds"] = time.process_time() - cpu
    info["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(info))


# --- the driver ----------------------------------------------------------------------------------


def run_child(mode: str, data: Path, n: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", mode, "--data", str(data), "--examples", str(n)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{mode} ({n}) failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(n: int, repeat: int) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix=f"trainingdash-export-bench-{n}-"))
    try:
        filled = run_child("populate", data, n)
        print(f"{n:>8} examples: {filled['messages']} messages in {filled['seconds']:.0f} s")
        runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "export": []}
        for _ in range(repeat):  # alternated, so a busy moment of the machine hits both
            for mode in runs:
                runs[mode].append(run_child(mode, data, n))
        best = {mode: min(found, key=lambda r: r["seconds"]) for mode, found in runs.items()}
        return {"n": n, **best}
    finally:
        shutil.rmtree(data, ignore_errors=True)


def report(results: list[dict[str, Any]]) -> None:
    print(
        f"{'examples':>9} {'baseline/s':>11} {'export/s':>9} {'share':>6} {'CPU share':>9} "
        f"{'base RSS':>9} {'export RSS':>11}  left out"
    )
    for r in results:
        base, exp = r["baseline"], r["export"]
        base_rate, exp_rate = base["examples"] / base["seconds"], exp["examples"] / exp["seconds"]
        cpu_share = base["cpu_seconds"] / exp["cpu_seconds"]
        print(
            f"{r['n']:>9} {base_rate:>11.0f} {exp_rate:>9.0f} {exp_rate / base_rate:>6.2f} "
            f"{cpu_share:>9.2f} {base['peak_rss_mb']:>7.0f}MB {exp['peak_rss_mb']:>9.0f}MB"
            f"  {exp['left_out']}"
        )
    small, large = results[0]["export"], results[-1]["export"]
    growth = large["peak_rss_mb"] / small["peak_rss_mb"]
    share = (large["examples"] / large["seconds"]) / (
        results[-1]["baseline"]["examples"] / results[-1]["baseline"]["seconds"]
    )
    factor = results[-1]["n"] / results[0]["n"]
    print(f"export speed / baseline at {results[-1]['n']}: {share:.2f} (target >= 0.5)")
    print(f"export peak RSS, {factor:.0f}x the examples: x{growth:.2f} (target < 1.5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=100_000, help="the largest size")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each, the fastest kept")
    parser.add_argument("--child", choices=["populate", "baseline", "export"])
    parser.add_argument("--data", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data, args.examples)
        return
    sizes = [max(1, args.examples // 10), args.examples]
    report([measure(n, args.repeat) for n in sizes])


if __name__ == "__main__":
    main()
