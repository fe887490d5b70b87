"""Collector benchmark: overhead over a bare query() loop, and sessions/minute per worker threads.

    .venv/bin/python bench/collector.py [--sessions 6] [--jobs 8]

Both sides run the same scripted sessions (real SDK, real bundled CLI, the scripted model) in
this process; the printed ratios compare runs made here, now (target: overhead under 1.10).
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import django_env  # noqa: E402 - sets up Django before the project imports

DATA = django_env.setup()

from claude_agent_sdk import ClaudeAgentOptions, query  # noqa: E402

from collection.jobs.runner import run_job  # noqa: E402
from collection.models import CollectionJob, Difficulty  # noqa: E402
from collection.schema import TaskDefinition  # noqa: E402
from collection.scripted_model.runtime import scripted_env  # noqa: E402
from collection.sessions.collector import TrainingDataCollector  # noqa: E402
from collection.sessions.spec import JobSpec  # noqa: E402

TOOLS = ["Read", "Edit", "Bash"]
PYTHON = shlex.quote(sys.executable)
SCRIPT: list[dict[str, Any]] = [
    {"tool": "Read", "input": {"file_path": "calc.py"}},
    {
        "tool": "Edit",
        "input": {"file_path": "calc.py", "old_string": "a - b", "new_string": "a + b"},
    },
    {"tool": "Bash", "input": {"command": f"{PYTHON} test_calc.py"}},
    {"text": "Fixed."},
]
TASK = TaskDefinition(
    name="Fix add()",
    category="debugging",
    difficulty=Difficulty.EASY,
    required_tools=TOOLS,
    metadata={"verifier": f"{PYTHON} test_calc.py"},
)


def workspace(name: str) -> Path:
    root = DATA / "work" / name
    root.mkdir(parents=True)
    (root / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (root / "test_calc.py").write_text("from calc import add\nassert add(2, 3) == 5\n")
    return root


def options(cwd: Path) -> ClaudeAgentOptions:
    env = scripted_env("script", 0, SCRIPT, cwd=cwd, config_dir=cwd.parent / f"{cwd.name}.cfg")
    return ClaudeAgentOptions(cwd=str(cwd), env=env, allowed_tools=TOOLS)


async def bare(n: int) -> float:
    start = time.perf_counter()
    async for _ in query(prompt="Fix the failing test", options=options(workspace(f"bare{n}"))):
        pass
    return time.perf_counter() - start


async def collected(n: int) -> float:
    start = time.perf_counter()
    collector = TrainingDataCollector()
    async with collector.collect_from_query(
        task=TASK, prompt="Fix the failing test", options=options(workspace(f"coll{n}"))
    ) as messages:
        async for _ in messages:
            pass
    return time.perf_counter() - start


def overhead(sessions: int) -> None:
    asyncio.run(bare(-1))  # warm the CLI's disk cache and the scripted model
    bare_s, coll_s = [], []
    for n in range(sessions):  # interleaved, so drift hits both sides alike
        bare_s.append(asyncio.run(bare(n)))
        coll_s.append(asyncio.run(collected(n)))
    b, c = sorted(bare_s)[len(bare_s) // 2], sorted(coll_s)[len(coll_s) // 2]
    print(f"bare query() loop   median {b:.2f}s over {sessions} sessions")
    print(f"collector           median {c:.2f}s over {sessions} sessions")
    print(f"collector overhead ratio: {c / b:.3f} (target < 1.10)")


def throughput(jobs: int) -> None:
    template = workspace("template")
    task = TASK.get_or_create_task()
    spec = JobSpec(
        prompt="Fix the failing test", allowed_tools=TOOLS, script=SCRIPT, workspace=str(template)
    )
    base = None
    for threads in (1, 2, 4):
        ids = [
            CollectionJob.objects.create(task=task, spec=spec.model_dump()).pk for _ in range(jobs)
        ]
        start = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            done = list(pool.map(run_job, ids))
        elapsed = time.perf_counter() - start
        ok = sum(1 for j in done if j and j.execution and j.execution.success)
        per_min = jobs / elapsed * 60
        base = base or per_min
        print(
            f"{threads} worker thread(s): {per_min:6.1f} sessions/min "
            f"({ok}/{jobs} succeeded), ratio vs 1 thread {per_min / base:.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=6)
    parser.add_argument("--jobs", type=int, default=8)
    args = parser.parse_args()
    try:
        overhead(args.sessions)
        throughput(args.jobs)
    finally:
        shutil.rmtree(DATA, ignore_errors=True)
