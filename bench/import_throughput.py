"""Import benchmark: throughput against bare json.loads, and memory as the input grows.

    .venv/bin/python bench/import_throughput.py [--copies 3] [--factor 10]

Builds the input by replicating the JSONL fixture sessions (Claude Code transcripts, one with
its sub-agent folder, two sub-agent files on their own, stream-json logs) with fresh session
ids and uuids. Each size is measured in a fresh subprocess with its own SQLite database: first
a baseline that only parses every line of the same files with `json.loads`, then
`import_paths()`. Prints MB/s and sessions/s, import speed as a share of the baseline's, and
peak RSS for `factor` times the input over peak RSS for the input (target: under 1.5).
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

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


# --- building the input ----------------------------------------------------------------------


def rewrite(source: Path, target: Path, copy: int) -> None:
    """Copy a transcript line by line, every uuid replaced by this copy's own."""
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"trainingdash-bench-{copy}")

    def fresh(match: re.Match[bytes]) -> bytes:
        return str(uuid.uuid5(namespace, match.group().decode())).encode()

    target.parent.mkdir(parents=True, exist_ok=True)
    with source.open("rb") as src, target.open("wb") as out:
        for line in src:
            out.write(UUID.sub(fresh, line))


def session_id(path: Path) -> str:
    with path.open() as fh:
        for line in fh:
            record = json.loads(line)
            if "sessionId" in record:
                return record["sessionId"]
    raise ValueError(f"no sessionId in {path}")


def build(root: Path, copies: int) -> Path:
    project = root / f"input-{copies}"
    for copy in range(copies):
        folder = project / f"copy-{copy}"
        for name in ALONE:
            rewrite(FIXTURES / name, folder / name, copy)
        main = folder / "tmp-session.jsonl"
        rewrite(FIXTURES / SUBAGENT_SESSION, main, copy)
        sid = session_id(main)
        main.rename(folder / f"{sid}.jsonl")
        for agent_id, name in SUBAGENT_FILES.items():
            rewrite(FIXTURES / name, folder / sid / "subagents" / f"agent-{agent_id}.jsonl", copy)
    return project


def transcript_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


# --- one measurement, in a child process -----------------------------------------------------


def child(folder: Path) -> None:
    import django_env

    data = django_env.setup("trainingdash-bench-import-", DEBUG="0")
    from collection.importers import import_paths

    files = transcript_files(folder)
    started = time.perf_counter()
    for path in files:
        with path.open("rb") as fh:
            for line in fh:
                json.loads(line)
    baseline = time.perf_counter() - started
    started = time.perf_counter()
    report = import_paths([folder])
    imported = time.perf_counter() - started
    assert report.ok, report.summary()
    shutil.rmtree(data, ignore_errors=True)
    print(
        json.dumps(
            {
                "bytes": sum(p.stat().st_size for p in files),
                "sessions": report.imported,
                "baseline_s": baseline,
                "import_s": imported,
                "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        )
    )


def measure(folder: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(folder)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def show(label: str, run: dict[str, float]) -> None:
    mb = run["bytes"] / 1e6
    print(
        f"{label:>4}: {mb:6.2f} MB, {run['sessions']:4d} sessions | "
        f"import {mb / run['import_s']:6.2f} MB/s, {run['sessions'] / run['import_s']:6.1f} "
        f"sessions/s | json.loads {mb / run['baseline_s']:7.1f} MB/s | "
        f"import/json.loads speed {run['baseline_s'] / run['import_s']:.4f} | "
        f"peak RSS {run['peak_rss_kb'] / 1024:.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=3, help="fixture sets in the small input")
    parser.add_argument("--factor", type=int, default=10, help="how much larger the big one is")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    root = Path(tempfile.mkdtemp(prefix="trainingdash-bench-input-"))
    try:
        small = measure(build(root, args.copies))
        large = measure(build(root, args.copies * args.factor))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    show("1x", small)
    show(f"{args.factor}x", large)
    ratio = large["peak_rss_kb"] / small["peak_rss_kb"]
    verdict = "flat" if ratio < 1.5 else "NOT flat"
    print(f"peak RSS {args.factor}x / 1x = {ratio:.2f} (target < 1.5: {verdict})")


if __name__ == "__main__":
    main()
