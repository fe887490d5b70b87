"""Calibration check: real scripted sessions against the calibration's pass rates.

    .venv/bin/python bench/calibration.py [--per-category 35] [--threads 2] [--seed 1]

Runs one batch of the default mix (every category and difficulty) through the real CLI and
prints, per difficulty, the verified pass rate against the calibration's target, the share of
golden examples, and a quality histogram. The baseline is the calibration itself (the planned
outcomes of the same sessions, measured in the same run): "real / planned" near 1.00 means the
verifier agrees with the plan. The tolerance is the one tests/test_calibration.py states for
the plans (+-10 points); at 50 sessions per difficulty one binomial sd is about 7 points.
"""

from __future__ import annotations

import argparse
import os
import shutil
from collections import Counter

import django_env  # noqa: E402 - sets up Django before the project imports

DATA = django_env.setup(DRAMATIQ_NAMESPACE=f"trainingdash-bench-{os.getpid()}")

from collection.calibration import current  # noqa: E402
from collection.jobs.batches import GenerationParams, start_batch, wait_for_batch  # noqa: E402
from collection.models import Difficulty, TrainingExample  # noqa: E402
from collection.task_templates import TaskTemplateLibrary  # noqa: E402
from trainingdash.broker import InProcessWorkers  # noqa: E402


def run(per_category: int, threads: int, seed: int) -> None:
    params = GenerationParams(examples_per_category=per_category, seed=seed, concurrency=threads)
    batch = start_batch(params)
    with InProcessWorkers(threads):
        wait_for_batch(batch, poll_s=0.5)
    library, target = TaskTemplateLibrary.load(), current()
    examples = TrainingExample.objects.filter(execution__job__batch=batch).select_related(
        "execution__task", "execution__job"
    )
    real: Counter[str] = Counter()
    planned: Counter[str] = Counter()
    golden: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for example in examples:
        execution, job = example.execution, example.execution.job
        difficulty = execution.task.difficulty
        template = library.get(job.plan_key.split(":")[0])
        total[difficulty] += 1
        real[difficulty] += bool(execution.success)
        planned[difficulty] += (
            template.planned_outcome(int(job.plan_key.split(":")[1])) == "success"
        )
        golden[difficulty] += example.is_golden
    print(f"{sum(total.values())} sessions (seed {params.seed}, {threads} worker threads)")
    for level in Difficulty:
        n = total[level] or 1
        ratio = real[level] / planned[level] if planned[level] else float("nan")
        print(
            f"  {level:6}: {real[level]:3}/{total[level]:3} passed = {real[level] / n:5.1%}"
            f"  (target {target.pass_rate[level]:.0%}, planned {planned[level] / n:5.1%},"
            f" real / planned {ratio:4.2f})  golden {golden[level] / n:5.1%}"
        )
    scores = Counter(min(int(e.quality_score * 10), 9) for e in examples)
    for tenth in range(10):
        bar = "#" * scores[tenth]
        print(f"  quality {tenth / 10:.1f}-{(tenth + 1) / 10:.1f} {scores[tenth]:4} {bar}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-category", type=int, default=35)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    try:
        run(args.per_category, args.threads, args.seed)
    finally:
        shutil.rmtree(DATA, ignore_errors=True)
