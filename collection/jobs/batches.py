"""Batch generation: a diverse dataset from the template library, one queued job per session.

    stats = await BatchTrainingGenerator(storage).generate_diverse_dataset(
        examples_per_category=10, include_chains=True, include_multi_agent=True)
    stats["total_examples"], stats["golden_examples"]

A batch is planned deterministically from its parameters (template and seed per planned
session, each with a `plan_key`), so resuming a cancelled or interrupted batch only creates
and queues what has not run yet. Each job runs under the jobs module's lease, so nothing is
collected twice. A cost ceiling stops the jobs that have not started once the batch has spent
it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from pydantic import BaseModel, ConfigDict, Field

from collection.jobs.runner import JobHooks
from collection.models import (
    ACTIVE_STATUSES,
    TEMPLATE_CATEGORIES,
    CollectionJob,
    Difficulty,
    Execution,
    GenerationBatch,
    IllegalTransition,
    JobStatus,
    TrainingExample,
)
from collection.storage import TrainingStorage, seed_storage
from collection.task_templates import TaskTemplate, TaskTemplateLibrary
from trainingdash.broker import InProcessWorkers


class GenerationParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    examples_per_category: int = Field(default=10, ge=1, le=10_000)
    categories: list[str] = Field(default_factory=lambda: list(TEMPLATE_CATEGORIES))
    difficulties: list[Difficulty] = Field(default_factory=lambda: list(Difficulty))
    include_chains: bool = True
    include_multi_agent: bool = True
    seed: int = 0
    concurrency: int = Field(default=2, ge=1, le=64)
    backend: Literal["scripted", "claude"] = "scripted"
    model: str | None = None
    max_cost_usd: float | None = Field(default=None, gt=0)


class PlannedJob(BaseModel):
    plan_key: str
    template: str
    seed: int


def plan(params: GenerationParams, library: TaskTemplateLibrary) -> list[PlannedJob]:
    """Which template runs with which seed: the same parameters always give the same plan."""
    planned: list[PlannedJob] = []
    for category in params.categories:
        if category == "multi_agent" and not params.include_multi_agent:
            continue
        templates = [
            t
            for t in library.templates(category=category)
            if t.difficulty in params.difficulties
            and (params.include_chains or t.job_kind != "chain")
        ]
        for i in range(params.examples_per_category if templates else 0):
            template = templates[i % len(templates)]
            seed = params.seed + i // len(templates)
            planned.append(
                PlannedJob(plan_key=f"{template.name}:{seed}", template=template.name, seed=seed)
            )
    return planned


def start_batch(
    params: GenerationParams,
    *,
    name: str = "",
    user: Any = None,
    library: TaskTemplateLibrary | None = None,
) -> GenerationBatch:
    """Store a batch and its planned jobs, and queue them once committed."""
    library = library or TaskTemplateLibrary.load()
    if not plan(params, library):
        raise ValueError(
            f"no templates match categories={params.categories} "
            f"difficulties={[str(d) for d in params.difficulties]}"
        )
    batch = GenerationBatch.objects.create(
        name=name or f"batch {timezone.now():%Y-%m-%d %H:%M}",
        params=params.model_dump(mode="json"),
        created_by=user,
    )
    batch.acquire()
    return _fill(batch, library)


def resume_batch(
    batch: GenerationBatch, library: TaskTemplateLibrary | None = None
) -> GenerationBatch:
    """Queue again what a cancelled or interrupted batch has not finished; nothing twice.

    Its cancelled jobs are requeued (each gets a fresh execution; see `CollectionJob.requeue`),
    planned jobs never created are created, and jobs still queued (an interrupted batch) are
    sent again: a job already run or running ignores a second message.
    """
    with transaction.atomic():
        if batch.is_finished:
            batch.requeue()
        if batch.status == JobStatus.QUEUED:
            batch.acquire()
        GenerationBatch.objects.filter(pk=batch.pk).update(cancel_requested=False)
        waiting = list(batch.jobs.filter(status=JobStatus.QUEUED))
        for job in batch.jobs.filter(status=JobStatus.CANCELLED):
            job.requeue()
        _fill(batch, library or TaskTemplateLibrary.load())
        for job in waiting:
            job.queue()
    return batch


def _fill(batch: GenerationBatch, library: TaskTemplateLibrary) -> GenerationBatch:
    """Create and queue the planned jobs that don't exist yet."""
    params = GenerationParams.model_validate(batch.params)
    with transaction.atomic():
        existing = set(batch.jobs.values_list("plan_key", flat=True))
        for item in plan(params, library):
            if item.plan_key not in existing:
                _create_job(batch, library.get(item.template), item, params).queue()
    return batch


def _create_job(
    batch: GenerationBatch, template: TaskTemplate, item: PlannedJob, params: GenerationParams
) -> CollectionJob:
    spec = template.job_spec(seed=item.seed, backend=params.backend)
    if params.model:
        spec = spec.model_copy(update={"model": params.model})
    task = template.task_definition().get_or_create_task()
    return CollectionJob.objects.create(
        task=task,
        kind=template.job_kind,
        spec=spec.model_dump(mode="json"),
        batch=batch,
        plan_key=item.plan_key,
        created_by=batch.created_by,
    )


def cancel_batch(batch: GenerationBatch) -> GenerationBatch:
    """Stop a batch: queued jobs are cancelled now, running ones at their next check."""
    if batch.is_active:
        batch.request_cancel()
        for job in batch.jobs.filter(status__in=ACTIVE_STATUSES):
            job.request_cancel()
    return refresh_status(batch)


class BatchRules(JobHooks):
    """A batch's rules for its jobs: none starts once the batch is cancelled or has spent its
    ceiling, and the batch's status follows its jobs."""

    def stop_reason(self, job: CollectionJob) -> str:
        batch = job.batch
        if batch is None:
            return ""
        batch.refresh_from_db()
        if batch.cancel_requested:
            return "batch cancelled"
        ceiling = batch.params.get("max_cost_usd")
        if ceiling and batch_cost(batch) >= ceiling:
            return f"batch cost ceiling ${ceiling:g} reached"
        return ""

    def finished(self, job: CollectionJob) -> None:
        if job.batch is not None:
            refresh_status(job.batch)


def batch_cost(batch: GenerationBatch) -> float:
    spent = Execution.objects.filter(job__batch=batch).aggregate(c=Sum("cost_usd"))["c"]
    return float(spent or 0.0)


def refresh_status(batch: GenerationBatch) -> GenerationBatch:
    """Derive the batch's status from its jobs (finished when none is queued or running)."""
    batch.refresh_from_db()
    if not batch.is_active or batch.jobs.filter(status__in=ACTIVE_STATUSES).exists():
        return batch
    try:
        if batch.cancel_requested:
            batch.cancel("batch cancelled")
        else:
            batch.finish()
    except IllegalTransition:
        pass  # another worker's last job finished it first
    return batch


def batch_stats(batch: GenerationBatch) -> dict[str, Any]:
    """The seed's stats (`total_examples`, `golden_examples`) and the batch's breakdowns."""
    jobs = list(batch.jobs.select_related("task", "execution"))
    examples = TrainingExample.objects.filter(execution__job__batch=batch).select_related(
        "execution__task"
    )
    finished = [j for j in jobs if j.is_finished]
    ends = [j.finished_at for j in finished if j.finished_at]
    return {
        "batch": batch.pk,
        "status": batch.status,
        "planned": len(jobs),
        "finished": len(finished),
        "total_examples": examples.count(),
        "golden_examples": examples.filter(is_golden=True).count(),
        "by_category": dict(Counter(e.execution.task.category for e in examples)),
        "by_difficulty": dict(Counter(e.execution.task.difficulty for e in examples)),
        "by_status": dict(Counter(j.status for j in jobs)),
        "by_execution_status": dict(Counter(j.execution.status for j in jobs if j.execution)),
        "failures": [
            {"job": j.pk, "plan_key": j.plan_key, "reason": _failure(j)}
            for j in jobs
            if j.is_finished and _failure(j)
        ],
        "total_cost_usd": round(batch_cost(batch), 6),
        "wall_time_s": round((max(ends) - batch.created_at).total_seconds(), 1) if ends else 0.0,
    }


def _failure(job: CollectionJob) -> str:
    if job.error:
        return job.error
    ex = job.execution
    if ex and ex.success is False:
        return (
            ex.error
            or "verifier failed: "
            + str((ex.performance_metrics.get("verifier") or {}).get("output", ""))[-300:]
        )
    return ""


def wait_for_batch(
    batch: GenerationBatch,
    *,
    poll_s: float = 1.0,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """Block until every job of the batch has finished; report progress on the way."""
    deadline = time.monotonic() + timeout_s if timeout_s else None
    while True:
        batch = refresh_status(batch)
        stats = batch_stats(batch)
        if on_progress:
            on_progress(stats)
        if not batch.is_active:
            return stats
        if deadline and time.monotonic() > deadline:
            raise TimeoutError(f"batch {batch.pk} still running after {timeout_s}s")
        time.sleep(poll_s)


class BatchTrainingGenerator:
    """The seed's generator facade."""

    def __init__(
        self, storage: TrainingStorage | None = None, library: TaskTemplateLibrary | None = None
    ) -> None:
        self.storage = seed_storage(storage)
        self.library = library

    async def generate_diverse_dataset(
        self,
        examples_per_category: int = 10,
        include_chains: bool = True,
        include_multi_agent: bool = True,
        *,
        run_workers: bool = True,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        """Plan, queue and (with `run_workers`) run a batch; returns its stats when done.

        Without `run_workers`, the jobs are left to the `dramatiq` workers already running.
        """
        settings_ = GenerationParams(
            examples_per_category=examples_per_category,
            include_chains=include_chains,
            include_multi_agent=include_multi_agent,
            **params,
        )
        return await asyncio.to_thread(self._generate, settings_, run_workers, on_progress)

    def _generate(
        self,
        params: GenerationParams,
        run_workers: bool,
        on_progress: Callable[[dict[str, Any]], None] | None,
    ) -> dict[str, Any]:
        batch = start_batch(params, library=self.library)
        if not run_workers:
            return wait_for_batch(batch, on_progress=on_progress)
        with InProcessWorkers(params.concurrency):
            return wait_for_batch(batch, on_progress=on_progress)
