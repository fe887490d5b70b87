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
from datetime import datetime

import django_env  # noqa: E402 - sets up Django before the project imports

DATA = django_env.setup(DRAMATIQ_NAMESPACE=f"trainingdash-bench-{os.getpid()}")

from collection.jobs.batches import (  # noqa: E402
    GenerationParams,
    start_batch,
    wait_for_batch,
)
from collection.models import CollectionJob, GenerationBatch  # noqa: E402
from trainingdash.broker import InProcessWorkers  # noqa: E402


def run(threads: int, per_category: int, seed: int) -> tuple[float, float, int]:
    params = GenerationParams(examples_per_category=per_category, seed=seed, concurrency=threads)
    batch = start_batch(params)
    with InProcessWorkers(threads):
        stats = wait_for_batch(batch, poll_s=0.2)
    batch = GenerationBatch.objects.get(pk=batch.pk)
    jobs = [_timings(j) for j in batch.jobs.select_related("execution")]
    wall = (max(end for _, end, _ in jobs) - min(start for start, _, _ in jobs)).total_seconds()
    job_s = sum((end - start).total_seconds() for start, end, _ in jobs)
    cli_s = sum(cli for _, _, cli in jobs)
    return len(jobs) / wall * 60, (job_s - cli_s) / job_s, stats["finished"]


def _timings(job: CollectionJob) -> tuple[datetime, datetime, float]:
    """When a job started and finished, and the seconds its CLI reported."""
    if job.started_at is None or job.finished_at is None or job.execution is None:
        raise RuntimeError(f"job {job.pk} never ran ({job.status}): the run can't be measured")
    return job.started_at, job.finished_at, (job.execution.duration_ms or 0) / 1000


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
