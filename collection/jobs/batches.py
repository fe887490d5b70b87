"""Batch generation: a diverse dataset from the template library, one queued job per session.

    stats = await BatchTrainingGenerator(storage).generate_diverse_dataset(
        examples_per_category=10, include_chains=True, include_multi_agent=True)
    stats["total_examples"], stats["golden_examples"]

A batch is planned deterministically from its parameters (template and seed per planned
session, each with a `plan_key`): a batch started without a seed gets a fresh random one,
stored in its parameters, and the same seed reproduces the same plan. Resuming a cancelled or
interrupted batch only creates and queues what has not run yet. Each job runs under the jobs
module's lease, so nothing is collected twice.

Concurrency is the batch's own: at most `concurrency` of its jobs are in flight (running, or
sent to the workers and not started yet; a queued job sent is marked `progress["sent_at"]`),
and each job that finishes sends the next (`dispatch`). The cost ceiling is a promise too: no
session starts once what the batch has spent plus the budgets of its running sessions
(including the one about to start) would pass it (`session_budget`); the batch then ends
cancelled, saying so and what it spent.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime, timedelta
from typing import Any, Literal

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone
from pydantic import BaseModel, ConfigDict, Field

from collection.jobs.runner import JobHooks, revive, stop_job
from collection.models import (
    ACTIVE_STATUSES,
    SENT_AT,
    TEMPLATE_CATEGORIES,
    CollectionJob,
    Difficulty,
    Execution,
    GenerationBatch,
    IllegalTransition,
    JobStatus,
    TrainingExample,
    lease_seconds,
)
from collection.storage import TrainingStorage, seed_storage
from collection.task_templates import TaskTemplate, TaskTemplateLibrary
from collection.verification import tail
from trainingdash.broker import InProcessWorkers

# Marks in a batch job's `progress` (a worker replaces it once the job runs): a queued job
# whose message is on its way to the workers (set by `CollectionJob.queue`), and a cancelled
# or failed job waiting to run again.
SENT = SENT_AT
RESUME = "resume"
# What a resume runs again.
RERUN = (JobStatus.CANCELLED, JobStatus.FAILED)


class GenerationParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    examples_per_category: int = Field(default=10, ge=1, le=10_000)
    categories: list[str] = Field(default_factory=lambda: list(TEMPLATE_CATEGORIES))
    difficulties: list[Difficulty] = Field(default_factory=lambda: list(Difficulty))
    include_chains: bool = True
    include_multi_agent: bool = True
    # None: a fresh random seed, chosen (and stored) when the batch starts.
    seed: int | None = Field(default=None, ge=0)
    concurrency: int = Field(default=2, ge=1, le=64)
    backend: Literal["scripted", "claude"] = "scripted"
    model: str | None = None
    max_cost_usd: float | None = Field(default=None, gt=0)

    def seeded(self) -> GenerationParams:
        """These parameters with a seed: the one given, else a fresh random one."""
        if self.seed is not None:
            return self
        return self.model_copy(update={"seed": secrets.randbelow(2**31)})


class PlannedJob(BaseModel):
    plan_key: str
    template: str
    seed: int


def plan(params: GenerationParams, library: TaskTemplateLibrary) -> list[PlannedJob]:
    """Which template runs with which seed: the same parameters always give the same plan."""
    if params.seed is None:
        raise ValueError("a plan needs a seed: plan(params.seeded(), library)")
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
    """Store a batch (with its seed) and its planned jobs, and send the first `concurrency`."""
    library = library or TaskTemplateLibrary.load()
    params = params.seeded()
    if not plan(params, library):
        raise ValueError(
            f"no templates match categories={params.categories} "
            f"difficulties={[str(d) for d in params.difficulties]}"
        )
    with transaction.atomic():
        batch = GenerationBatch.objects.create(
            name=name or f"batch {timezone.now():%Y-%m-%d %H:%M}",
            params=params.model_dump(mode="json"),
            created_by=user,
        )
        batch.acquire()
        _fill(batch, library)
        dispatch(batch)
    return batch


def can_resume(batch: GenerationBatch, library: TaskTemplateLibrary | None = None) -> bool:
    """Whether resuming would do anything: a finished batch with cancelled or failed jobs or
    planned jobs never created, or an interrupted one (see `interrupted`)."""
    if batch.is_active:
        return interrupted(batch)
    if batch.jobs.filter(status__in=RERUN).exists():
        return True
    return bool(_missing(batch, library or TaskTemplateLibrary.load()))


def interrupted(batch: GenerationBatch) -> bool:
    """An active batch with nothing going on: no job running under a live lease and none sent
    in the last lease period, so its workers lost their messages (or died)."""
    now = timezone.now()
    jobs = batch.jobs.filter(status__in=ACTIVE_STATUSES)
    live = jobs.filter(status=JobStatus.RUNNING, lease_expires_at__gte=now)
    if not jobs.exists() or live.exists():
        return False
    recent = now - timedelta(seconds=lease_seconds())
    sent = jobs.filter(status=JobStatus.QUEUED, progress__has_key=SENT)
    return not any(_sent_at(p) > recent for p in sent.values_list("progress", flat=True))


def _sent_at(progress: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(progress[SENT])


def resume_batch(
    batch: GenerationBatch, library: TaskTemplateLibrary | None = None
) -> GenerationBatch:
    """Run again what a cancelled or interrupted batch has not finished; nothing twice.

    Its cancelled and failed jobs run again (each with a fresh execution; see
    `CollectionJob.requeue`) and planned jobs never created are created, `concurrency` at a
    time; an interrupted batch's queued jobs are sent again (a job already run or running
    ignores a second message) and running jobs whose worker is gone are queued again
    (`runner.revive`). Raises `ValueError` when there is nothing to resume.
    """
    library = library or TaskTemplateLibrary.load()
    if not can_resume(batch, library):
        raise ValueError(f"batch {batch.pk} has nothing to resume")
    with transaction.atomic():
        if batch.is_finished:
            batch.requeue()
        if batch.status == JobStatus.QUEUED:
            batch.acquire()
        GenerationBatch.objects.filter(pk=batch.pk).update(cancel_requested=False, error="")
        batch.jobs.filter(status__in=RERUN).update(progress={RESUME: True})
        batch.jobs.filter(status=JobStatus.QUEUED).update(progress={})  # sent, never arrived
        for job in batch.jobs.filter(status=JobStatus.RUNNING).select_related("execution"):
            revive(job)
        _fill(batch, library)
        dispatch(batch)
    batch.refresh_from_db()
    return batch


def _missing(batch: GenerationBatch, library: TaskTemplateLibrary) -> list[PlannedJob]:
    params = GenerationParams.model_validate(batch.params)
    existing = set(batch.jobs.values_list("plan_key", flat=True))
    return [item for item in plan(params, library) if item.plan_key not in existing]


def _fill(batch: GenerationBatch, library: TaskTemplateLibrary) -> GenerationBatch:
    """Create the planned jobs that don't exist yet (queued, not sent: see `dispatch`)."""
    params = GenerationParams.model_validate(batch.params)
    with transaction.atomic():
        for item in _missing(batch, library):
            _create_job(batch, library.get(item.template), item, params)
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


def in_flight(batch: GenerationBatch) -> QuerySet[CollectionJob]:
    """The batch's jobs running or sent to the workers and not started yet."""
    sent = Q(status=JobStatus.QUEUED, progress__has_key=SENT)
    return batch.jobs.filter(Q(status=JobStatus.RUNNING) | sent)


def dispatch(batch: GenerationBatch) -> int:
    """Send the batch's next jobs while fewer than `concurrency` are in flight; how many.

    Queued jobs not sent yet go first (in plan order), then cancelled or failed jobs a resume
    asked to run again. Dispatchers of one batch take turns on its row, so two jobs finishing
    at once can't both fill the same free slot.
    """
    with transaction.atomic():
        # A row lock on PostgreSQL; on SQLite the IMMEDIATE transaction already serialises.
        batch = GenerationBatch.objects.select_for_update().get(pk=batch.pk)
        if not batch.is_active or batch.cancel_requested or batch.error:
            return 0
        free = GenerationParams.model_validate(batch.params).concurrency
        free -= in_flight(batch).count()
        unsent = batch.jobs.filter(status=JobStatus.QUEUED).exclude(progress__has_key=SENT)
        again = batch.jobs.filter(status__in=RERUN, progress__has_key=RESUME)
        jobs = list(unsent.order_by("id")[: max(free, 0)])
        jobs += list(again.order_by("id")[: max(free - len(jobs), 0)])
        for job in jobs:
            # Sent once committed, marked as sent (in flight) meanwhile.
            if job.can("requeue"):
                job.requeue()
            else:
                job.queue()
    return len(jobs)


def cancel_batch(batch: GenerationBatch) -> GenerationBatch:
    """Stop a batch: queued jobs are cancelled now, running ones at their next check (now, when
    their worker is gone)."""
    if batch.is_active:
        batch.request_cancel()
        for job in batch.jobs.filter(status__in=ACTIVE_STATUSES).select_related("execution"):
            with suppress(IllegalTransition):  # it ended meanwhile
                stop_job(job)
        batch.jobs.filter(status__in=RERUN, progress__has_key=RESUME).update(progress={})
    return refresh_status(batch)


class BatchRules(JobHooks):
    """A batch's rules for its jobs: none starts once the batch is cancelled or its running
    sessions' budgets could take it past its cost ceiling; a job that finishes sends the
    next; the batch's status follows its jobs."""

    def stop_reason(self, job: CollectionJob) -> str:
        batch = job.batch
        if batch is None:
            return ""
        batch.refresh_from_db()
        if batch.cancel_requested:
            return "batch cancelled"
        if batch.error:
            return batch.error  # stopped by its cost ceiling
        return _stop_at_ceiling(batch, job)

    def finished(self, job: CollectionJob) -> None:
        if job.batch is not None:
            dispatch(job.batch)
            refresh_status(job.batch)


def session_budget(job: CollectionJob) -> float:
    """What a session may cost: its spec's `max_cost_usd`, else its difficulty's cost budget
    (`TRAININGDASH_SCORING["cost_budget_usd"]`, the cost the scorer calls on budget)."""
    if job.spec.get("max_cost_usd"):
        return float(job.spec["max_cost_usd"])
    budgets: dict[str, float] = settings.TRAININGDASH_SCORING["cost_budget_usd"]
    return float(budgets.get(job.task.difficulty, max(budgets.values())))


def ceiling_reason(ceiling: float, spent: float) -> str:
    return f"stopped: cost ceiling ${ceiling:g} reached (${spent:.4f} spent)"


def _stop_at_ceiling(batch: GenerationBatch, job: CollectionJob) -> str:
    """Stop the batch when what it spent plus what its running sessions, up to `job`, may
    still spend passes its ceiling: its queued jobs are cancelled, its running ones finish,
    and the reason stays on the batch (`error`) until it ends."""
    ceiling = batch.params.get("max_cost_usd")
    if not ceiling:
        return ""
    spent = batch_cost(batch)
    if spent + _running_budgets(batch, job) <= ceiling:
        return ""
    reason = ceiling_reason(ceiling, spent)
    with transaction.atomic():
        locked = GenerationBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.error:
            return locked.error  # another worker stopped it first
        GenerationBatch.objects.filter(pk=batch.pk).update(error=reason)
        # Locked while queued: a worker can't take one of them until we are done.
        for queued in batch.jobs.select_for_update().filter(status=JobStatus.QUEUED):
            queued.cancel(reason)
        again = batch.jobs.filter(status__in=RERUN, progress__has_key=RESUME)
        again.filter(status=JobStatus.CANCELLED).update(error=reason)
        again.update(progress={})
    return reason


def _running_budgets(batch: GenerationBatch, job: CollectionJob) -> float:
    """What the batch's sessions running since `job` started or earlier (itself included) may
    still spend, each up to its budget. First come, first served: two jobs starting at once
    don't both stop for each other."""
    earlier = Q(started_at__lt=job.started_at) | Q(started_at=job.started_at, pk__lte=job.pk)
    running = batch.jobs.filter(earlier, status=JobStatus.RUNNING).select_related(
        "task", "execution"
    )
    return sum(max(0.0, session_budget(job) - _spent(job)) for job in running)


def _spent(job: CollectionJob) -> float:
    return job.execution.cost_usd if job.execution else 0.0


def batch_cost(batch: GenerationBatch) -> float:
    spent = Execution.objects.filter(job__batch=batch).aggregate(c=Sum("cost_usd"))["c"]
    return float(spent or 0.0)


def refresh_status(batch: GenerationBatch) -> GenerationBatch:
    """Derive the batch's status from its jobs (finished when none is queued or running)."""
    batch.refresh_from_db()
    if not batch.is_active:
        return batch
    if not in_flight(batch).exists():
        dispatch(batch)  # nothing on its way: a worker died between a job's end and its hook
    if batch.jobs.filter(status__in=ACTIVE_STATUSES).exists():
        return batch
    try:
        if batch.cancel_requested:
            batch.cancel("batch cancelled")
        elif batch.error:  # stopped by its cost ceiling: say what it spent in the end
            batch.cancel(ceiling_reason(batch.params["max_cost_usd"], batch_cost(batch)))
        elif failed := batch.jobs.filter(status=JobStatus.FAILED).count():
            # Sessions that could not run (no model, a crash, the time limit): not a success.
            first = batch.jobs.filter(status=JobStatus.FAILED).order_by("id").first()
            reason = first.error.splitlines()[0][:300] if first and first.error else ""
            batch.fail(f"{failed} of {batch.jobs.count()} sessions failed to run: {reason}")
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
        "seed": batch.params.get("seed"),
        "reason": batch.error,
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
        output = str((ex.performance_metrics.get("verifier") or {}).get("output", ""))
        return ex.error or "verifier failed: " + tail(output, 300)
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
