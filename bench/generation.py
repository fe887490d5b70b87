"""Batch generation benchmark: sessions/minute with 1, 2 and 4 worker threads, and our overhead.

    .venv/bin/python bench/generation.py [--per-category 1]

Each run is a real batch (scripted model, real CLI, Dramatiq worker threads in this process on
the configured Redis, embedded when REDIS_URL is unset). "Outside the CLI" is a job's wall
time minus the CLI's own reported duration: sandbox copy, storing, verifier, scoring, queueing.
"""

from __future__ import annotations

import argparse
import os
import shutil

import django_env  # noqa: E402 - sets up Django before the project imports

DATA = django_env.setup(DRAMATIQ_NAMESPACE=f"trainingdash-bench-{os.getpid()}")

from collection.jobs.batches import (  # noqa: E402
    GenerationParams,
    start_batch,
    wait_for_batch,
)
from collection.models import GenerationBatch  # noqa: E402
from trainingdash.broker import InProcessWorkers  # noqa: E402


def run(threads: int, per_category: int, seed: int) -> tuple[float, float, int]:
    params = GenerationParams(examples_per_category=per_category, seed=seed, concurrency=threads)
    batch = start_batch(params)
    with InProcessWorkers(threads):
        stats = wait_for_batch(batch, poll_s=0.2)
    batch = GenerationBatch.objects.get(pk=batch.pk)
    jobs = list(batch.jobs.select_related("execution"))
    wall = (max(j.finished_at for j in jobs) - min(j.started_at for j in jobs)).total_seconds()
    job_s = sum((j.finished_at - j.started_at).total_seconds() for j in jobs)
    cli_s = sum((j.execution.duration_ms or 0) / 1000 for j in jobs)
    return len(jobs) / wall * 60, (job_s - cli_s) / job_s, stats["finished"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-category", type=int, default=1)
    args = parser.parse_args()
    try:
        base = None
        for i, threads in enumerate((1, 2, 4)):
            per_min, outside, n = run(threads, args.per_category, seed=100 + i)
            base = base or per_min
            print(
                f"{threads} worker thread(s): {per_min:5.1f} sessions/min over {n} sessions, "
                f"ratio vs 1 thread {per_min / base:.2f}; share of job time outside the CLI "
                f"{outside:.3f}"
            )
    finally:
        shutil.rmtree(DATA, ignore_errors=True)
