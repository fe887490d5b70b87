"""Collection jobs: what to run, and running it exactly once under a database lease.

`create_job()` stores a job and enqueues it on commit; the actor calls `run_job(job_id)`.
A job runs in a fresh sandbox directory (a copy of its workspace, if any) with time and cost
limits, can be cancelled while it runs, and is retried only for infrastructure errors. The
lease (owner + expiry, renewed while running) means a redelivered message never runs a job
that another worker is running; a job whose worker died is taken over when its lease lapses,
re-running into the same execution so there is never a second execution or example.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from claude_agent_sdk import AgentDefinition, ClaudeAgentOptions
from django import db
from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone

from collection.jobs.spec import JobSpec
from collection.models import (
    CollectionJob,
    Execution,
    JobKind,
    JobStatus,
    Source,
    Task,
    TaskStatus,
)
from collection.sessions.chains import (
    ChainStep,
    ConversationChainCollector,
    default_step_options,
)
from collection.sessions.collector import TrainingDataCollector
from trainingdash.broker import InfrastructureError

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


class JobCancelled(Exception):
    pass


def create_job(
    task: Task, spec: JobSpec, *, kind: str = JobKind.SESSION, user: Any = None
) -> CollectionJob:
    """Store a job and queue it once the surrounding transaction commits."""
    if kind == JobKind.CHAIN and spec.chain is None:
        raise ValueError("a chain job needs spec.chain")
    job = CollectionJob.objects.create(
        task=task, kind=kind, spec=spec.model_dump(mode="json"), created_by=user
    )
    transaction.on_commit(lambda: enqueue(job.pk))
    return job


def enqueue(job_id: int) -> None:
    from collection.jobs.actors import run_collection_job

    run_collection_job.send(job_id)


def cancel_job(job: CollectionJob) -> CollectionJob:
    """Ask a job to stop: a queued one is cancelled now, a running one at its next check."""
    CollectionJob.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.CANCELLED, cancel_requested=True, finished_at=timezone.now()
    )
    CollectionJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(cancel_requested=True)
    job.refresh_from_db()
    return job


# --- the lease ---------------------------------------------------------------------------------


def lease_seconds() -> int:
    return int(getattr(settings, "COLLECTION_LEASE_SECONDS", 60))


def acquire(job_id: int, owner: str) -> CollectionJob | None:
    """Take the job if it is queued, or running under a lapsed lease. None: not ours to run."""
    now = timezone.now()
    free = Q(status=JobStatus.QUEUED) | Q(status=JobStatus.RUNNING, lease_expires_at__lt=now)
    with transaction.atomic():
        taken = CollectionJob.objects.filter(free, pk=job_id, cancel_requested=False).update(
            status=JobStatus.RUNNING,
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_seconds()),
        )
    if not taken:
        return None
    job = CollectionJob.objects.select_related("task", "execution").get(pk=job_id)
    job.attempts += 1
    job.started_at = job.started_at or now
    job.save(update_fields=["attempts", "started_at"])
    return job


def renew(job_id: int, owner: str, progress: dict[str, Any]) -> bool:
    """Extend our lease and publish progress; False when the job should stop (cancelled)."""
    expires = timezone.now() + timedelta(seconds=lease_seconds())
    try:
        CollectionJob.objects.filter(pk=job_id, lease_owner=owner).update(
            lease_expires_at=expires, progress=progress
        )
        return not CollectionJob.objects.filter(pk=job_id, cancel_requested=True).exists()
    finally:
        db.connection.close()  # called from a pool thread: don't leave its connection open


# --- running -----------------------------------------------------------------------------------


def run_job(
    job_id: int, owner: str | None = None, on_message: Callable[[Any], None] | None = None
) -> CollectionJob | None:
    """Run a job once. Returns the finished job, or None when this delivery has nothing to do.

    Raises `InfrastructureError` (retried by the broker) when the database or a lease holder
    is in the way; never for a failed session, which is data like any other.
    """
    owner = owner or f"{WORKER_ID}:{threading.get_ident()}:{uuid.uuid4().hex[:6]}"
    try:
        job = acquire(job_id, owner)
    except DatabaseError as exc:
        raise InfrastructureError(f"job {job_id}: database unavailable: {exc}") from exc
    if job is None:
        return _explain_skip(job_id)
    from collection.jobs.batches import refresh_status, stop_reason

    reason = stop_reason(job)
    if reason:
        return _finish(job, JobStatus.CANCELLED, reason)
    execution = _fresh_execution(job)
    sandbox = _sandbox(job)
    try:
        status, error = asyncio.run(_collect(job, execution, sandbox, owner, on_message))
    finally:
        shutil.rmtree(sandbox, ignore_errors=True)
    job = _finish(job, status, error)
    if job.batch_id:
        refresh_status(job.batch)
    return job


def _finish(job: CollectionJob, status: str, error: str) -> CollectionJob:
    CollectionJob.objects.filter(pk=job.pk).update(
        status=status, error=error, finished_at=timezone.now(), lease_expires_at=None
    )
    job.refresh_from_db()
    return job


def _explain_skip(job_id: int) -> None:
    job = CollectionJob.objects.filter(pk=job_id).first()
    if job is None or job.is_finished or job.cancel_requested:
        return None  # finished already (a redelivery) or gone: nothing to do
    # Running under a live lease elsewhere: let the broker retry after its backoff.
    raise InfrastructureError(f"job {job_id} is leased by {job.lease_owner}")


def _fresh_execution(job: CollectionJob) -> Execution:
    """The job's execution, emptied if an earlier attempt died mid-session."""
    source = Source.SCRIPTED if job.spec.get("backend") == "scripted" else Source.CLAUDE
    with transaction.atomic():
        execution = job.execution
        if execution is None:
            execution = Execution.objects.create(
                task=job.task, source=source, created_by=job.created_by
            )
            job.execution = execution
            job.save(update_fields=["execution"])
        elif job.attempts > 1:
            lost = execution.messages.count()
            execution.messages.all().delete()
            execution.tool_calls.all().delete()
            execution.actions.all().delete()
            Execution.objects.filter(pk=execution.pk).update(
                status=TaskStatus.PENDING,
                num_turns=0,
                cost_usd=0,
                duration_ms=None,
                api_duration_ms=None,
                input_tokens=0,
                output_tokens=0,
                session_id="",
                cache_creation_input_tokens=0,
                cache_read_input_tokens=0,
                started_at=None,
                performance_metrics={},
                error="",
                metadata=execution.metadata
                | {"interrupted_attempts": job.attempts - 1, "messages_lost_with_worker": lost},
            )
            execution.refresh_from_db()
    return execution


def _sandbox(job: CollectionJob) -> Path:
    root = Path(settings.DATA_DIR) / "sandboxes" / f"job-{job.pk}-attempt-{job.attempts}"
    shutil.rmtree(root, ignore_errors=True)
    workspace = job.spec.get("workspace")
    if workspace:
        shutil.copytree(workspace, root / "work")
    else:
        (root / "work").mkdir(parents=True)
    (root / "config").mkdir(exist_ok=True)
    return root


def build_options(spec: JobSpec, sandbox: Path) -> ClaudeAgentOptions:
    work = sandbox / "work"
    env: dict[str, str] = {}
    if spec.backend == "scripted":
        from collection.scripted_model.runtime import scripted_env

        env = scripted_env(
            spec.policy, spec.seed, spec.script, cwd=work, config_dir=sandbox / "config"
        )
    agents = None
    if spec.agents:
        agents = {
            name: AgentDefinition(
                description=a.description, prompt=a.prompt, tools=a.tools, model=a.model
            )
            for name, a in spec.agents.items()
        }
    return ClaudeAgentOptions(
        cwd=str(work),
        env=env,
        allowed_tools=spec.allowed_tools,
        max_turns=spec.max_turns,
        model=spec.model,
        max_budget_usd=spec.max_cost_usd,
        agents=agents,
    )


async def _collect(
    job: CollectionJob,
    execution: Execution,
    sandbox: Path,
    owner: str,
    listener: Callable[[Any], None] | None = None,
) -> tuple[str, str]:
    spec = JobSpec.model_validate(job.spec)
    options = build_options(spec, sandbox)
    progress: dict[str, Any] = {"messages": 0, "tool_calls": 0, "last": ""}

    def on_message(message: Any) -> None:
        progress["messages"] += 1
        for block in getattr(message, "content", None) or []:
            if type(block).__name__ == "ToolUseBlock":
                progress["tool_calls"] += 1
                progress["last"] = block.name
        if listener:
            listener(message)

    work = asyncio.create_task(_session(job, spec, options, execution, on_message))
    watcher = asyncio.create_task(_watch(job.pk, owner, progress, work))
    try:
        async with asyncio.timeout(spec.timeout_s):
            await work
    except TimeoutError:
        return await _ended(execution, TaskStatus.FAILED, f"timed out after {spec.timeout_s:g}s")
    except asyncio.CancelledError:
        if watcher.done() and watcher.result() == "cancelled":
            return await _ended(execution, TaskStatus.CANCELLED, "cancelled by a user")
        raise
    except Exception as exc:  # the session crashed: its execution says how
        return JobStatus.FAILED, f"{type(exc).__name__}: {exc}"[:2000]
    finally:
        watcher.cancel()
    return JobStatus.SUCCEEDED, ""


async def _session(
    job: CollectionJob,
    spec: JobSpec,
    options: ClaudeAgentOptions,
    execution: Execution,
    on_message: Any,
) -> None:
    if job.kind == JobKind.CHAIN:
        assert spec.chain is not None
        await ConversationChainCollector().collect_from_chain(
            spec.chain,
            job.task,
            spec.prompt,
            options,
            execution=execution,
            step_options=partial(_step_options, spec),
        )
        return
    await TrainingDataCollector().run(
        job.task,
        spec.prompt,
        options=options,
        execution=execution,
        verifier=spec.verifier,
        on_message=on_message,
    )


def _step_options(
    spec: JobSpec, step: ChainStep, options: ClaudeAgentOptions
) -> ClaudeAgentOptions:
    """A chain step's options; on the scripted model, the step's own script."""
    options = default_step_options(step, options)
    if spec.backend == "scripted" and "script" in step.extra:
        from collection.scripted_model.runtime import scripted_env

        env = scripted_env(
            spec.policy,
            spec.seed,
            step.extra["script"],
            cwd=options.cwd,
            config_dir=options.env.get("CLAUDE_CONFIG_DIR"),
        )
        options = dataclasses.replace(options, env=env)
    return options


async def _watch(job_id: int, owner: str, progress: dict[str, Any], work: asyncio.Task) -> str:
    """Renew the lease and publish progress every few seconds; cancel the work on request."""
    interval = max(1.0, lease_seconds() / 4)
    while not work.done():
        keep_going = await asyncio.to_thread(renew, job_id, owner, dict(progress))
        if not keep_going:
            work.cancel()
            return "cancelled"
        await asyncio.sleep(interval)
    return "done"


async def _ended(execution: Execution, status: str, error: str) -> tuple[str, str]:
    """Label an execution the collector closed as cancelled with the job's real reason."""

    def label() -> None:
        try:
            Execution.objects.filter(pk=execution.pk).update(
                status=status, error=error, is_partial=True, success=False
            )
        finally:
            db.connection.close()

    await asyncio.to_thread(label)
    job_status = JobStatus.CANCELLED if status == TaskStatus.CANCELLED else JobStatus.FAILED
    return job_status, error
