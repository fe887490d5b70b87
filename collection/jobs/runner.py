"""Collection jobs: what to run, and running it exactly once under a database lease.

    job = create_job(task, JobSpec(prompt="Fix the failing test", ...))   # queued on commit
    run_job(job.pk)                                                       # what the actor calls

A job runs in a fresh sandbox directory (a copy of its workspace, if any) with time and cost
limits, can be cancelled while it runs, and is retried only when a retry can help. The lease
(owner + expiry, renewed while running; see `CollectionJob.acquire`) means a redelivered
message never runs a job that another worker is running; a job whose worker died is taken over
when its lease lapses, re-running into the same execution so there is never a second execution
or example; a worker that wakes after its lease lapsed (paused, suspended) writes nothing more
into it (`LeasedControl`). A database restart under a running job keeps a finished session's
end (retried on a fresh connection); a session it cut short runs again, counted as an attempt.
What a job kind runs is its collector's business (`collection.jobs.collectors`); owners of
jobs such as batches add their rules through `JobHooks`, registered at start-up.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from claude_agent_sdk import (
    AgentDefinition,
    ClaudeAgentOptions,
    ProcessError,
    SystemMessage,
    ToolUseBlock,
)
from django import db
from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from collection.jobs.collectors import JobRun, collector_for
from collection.lifecycle import Outcome, finish, open_execution, reset_execution
from collection.models import (
    CollectionJob,
    Execution,
    IllegalTransition,
    JobKind,
    JobStatus,
    LeasedJob,
    Task,
    TaskStatus,
    gave_up,
    lease_seconds,
    max_attempts,
)
from collection.sessions.collector import SessionControl
from collection.sessions.spec import JobSpec
from trainingdash.broker import JobError

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"
log = logging.getLogger(__name__)


class JobHooks:
    """Rules an owner of jobs adds to running them (a batch's cancel and cost ceiling)."""

    def stop_reason(self, job: CollectionJob) -> str:
        """Why the job should not start; "" to let it run."""
        return ""

    def finished(self, job: CollectionJob) -> None:
        """Called after the job reached a final state."""


HOOKS: list[JobHooks] = []


def register_hooks(hooks: JobHooks) -> None:
    if not any(type(h) is type(hooks) for h in HOOKS):
        HOOKS.append(hooks)


def create_job(
    task: Task, spec: JobSpec, *, kind: str = JobKind.SESSION, user: Any = None
) -> CollectionJob:
    """Store a job and queue it once the surrounding transaction commits."""
    if kind == JobKind.CHAIN and spec.chain is None:
        raise ValueError("a chain job needs spec.chain")
    job = CollectionJob.objects.create(
        task=task, kind=kind, spec=spec.model_dump(mode="json"), created_by=user
    )
    job.queue()
    return job


def renew(job_id: int, owner: str, progress: dict[str, Any]) -> str:
    """Extend our lease and publish progress; why the job should stop ("" to go on): a user
    cancelled it, or another worker took it over (our lease lapsed meanwhile)."""
    expires = timezone.now() + timedelta(seconds=lease_seconds())
    try:
        held = CollectionJob.objects.filter(
            pk=job_id, lease_owner=owner, status=JobStatus.RUNNING
        ).update(lease_expires_at=expires, progress=progress)
        if not held:
            return LEASE_LOST
        if CollectionJob.objects.filter(pk=job_id, cancel_requested=True).exists():
            return "cancelled by a user"
        return ""
    except DatabaseError:
        log.warning("job %s: could not renew its lease; trying again", job_id, exc_info=True)
        return ""  # the session goes on; a lease lapsed meanwhile is noticed once the DB is back
    finally:
        db.connection.close()  # called from a pool thread: don't leave its connection open


LEASE_LOST = "stopped: its lease lapsed and another worker took the job over"


@dataclass
class LeasedControl(SessionControl):
    """A job's session control: the session writes to its execution only while `owner` holds
    the job's lease. A worker paused past its lease (a VM suspended, a long GC) that wakes
    after another worker took the job over then writes nothing into the execution the new
    attempt is filling; it only stops."""

    job_id: int = 0
    owner: str = ""

    def may_write(self) -> bool:
        """Whether our lease still holds; called in the write's transaction, it locks the job's
        row until that commits, so a takeover (which empties the execution) waits for it."""
        held = CollectionJob.objects.select_for_update().filter(
            pk=self.job_id, lease_owner=self.owner, status=JobStatus.RUNNING
        )
        return bool(list(held.values_list("pk", flat=True)))


@contextmanager
def leased(model: type[LeasedJob], pk: int, owner: str) -> Iterator[None]:
    """Renew `owner`'s lease on job `pk` of `model` while the block runs, for a leased job that
    is not a session (an import upload): a thread extends it every quarter of a lease."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(max(1.0, lease_seconds() / 4)):
            expires = timezone.now() + timedelta(seconds=lease_seconds())
            held = model._default_manager.filter(pk=pk, lease_owner=owner, status=JobStatus.RUNNING)
            try:
                held.update(lease_expires_at=expires)
            except DatabaseError:
                log.warning("%s %s: could not renew its lease", model.__name__, pk, exc_info=True)
            finally:
                db.connection.close()  # this thread's

    thread = threading.Thread(target=beat, name=f"lease-{pk}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


# --- running -----------------------------------------------------------------------------------


def run_job(
    job_id: int, owner: str | None = None, on_message: Callable[[Any], None] | None = None
) -> CollectionJob | None:
    """Run a job once. Returns the finished job, or None when this delivery has nothing to do.

    Raises a retryable `JobError` when the database or a lease holder is in the way; never
    for a failed session, which is data like any other, nor for a job that could not start
    (bad options, a missing workspace, an unknown policy): that job fails with the reason.
    """
    owner = owner or f"{WORKER_ID}:{threading.get_ident()}:{uuid.uuid4().hex[:6]}"
    try:
        job = CollectionJob.objects.select_related("task", "execution").filter(pk=job_id).first()
        if job is None or not _acquire(job, owner):
            return None
    except DatabaseError as exc:
        raise JobError(f"job {job_id}: database unavailable: {exc}", retryable=True) from exc
    if _run(job, owner, on_message):
        _finished(job)
    return job


def _run(job: CollectionJob, owner: str, on_message: Callable[[Any], None] | None) -> bool:
    """Run the job's session(s) and move the job to its final state, whatever happens.
    False when another worker took the job over meanwhile (it is theirs to end)."""
    progress: dict[str, Any] = {"messages": 0, "tool_calls": 0, "last": ""}
    outcome: Outcome | None
    try:
        reason = next((r for r in (h.stop_reason(job) for h in HOOKS) if r), "")
        if reason:
            outcome = Outcome(TaskStatus.CANCELLED, error=reason)
        elif job.attempts > max_attempts():
            outcome = Outcome(TaskStatus.FAILED, error=gave_up(job.attempts - 1))
        else:
            outcome = _session(job, owner, progress, on_message)
    except DatabaseError as exc:
        # The session could not be stored (the database went away under it): the lease
        # lapses and the job is taken over, its execution emptied, once the database is back.
        raise JobError(f"job {job.pk}: database unavailable: {exc}", retryable=True) from exc
    except Exception as exc:  # noqa: BLE001 - anything else fails the job, with the reason
        outcome = Outcome(TaskStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
    try:
        # The session is over: its end is kept through a database restart, not run again.
        _while_database_returns(job, lambda: _end(job, owner, outcome, progress))
        if outcome is not None:
            _while_database_returns(
                job, lambda: close_execution(job.execution, outcome.status, outcome.error)
            )
    except IllegalTransition:
        log.warning("job %s: %s (now %s)", job.pk, LEASE_LOST_LOG, job.lease_owner or "queued")
        return False
    except DatabaseError as exc:
        raise JobError(f"job {job.pk}: database unavailable: {exc}", retryable=True) from exc
    return True


LEASE_LOST_LOG = "lease lost to another worker; leaving the job to it"


def _end(job: CollectionJob, owner: str, outcome: Outcome | None, progress: dict[str, Any]) -> None:
    """Move the job to its final state; `IllegalTransition` when our lease was lost."""
    if outcome is None:
        job.finish(owner=owner, progress=progress)
    elif outcome.status == TaskStatus.CANCELLED:
        job.cancel(outcome.error, owner=owner, progress=progress)
    else:
        job.fail(outcome.error, owner=owner, progress=progress)


def _while_database_returns(job: CollectionJob, action: Callable[[], None]) -> None:
    """Do `action`, again on a fresh connection while the database is unavailable (restarted,
    failing over), for as long as a lease lasts; then its `DatabaseError` is raised."""
    deadline = time.monotonic() + lease_seconds()
    delay = 0.25
    while True:
        try:
            return action()
        except DatabaseError:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("job %s: database unavailable; trying again", job.pk, exc_info=True)
        db.connection.close()  # a broken connection is not reused
        time.sleep(delay)
        delay = min(delay * 2, 4.0)


def _session(
    job: CollectionJob,
    owner: str,
    progress: dict[str, Any],
    on_message: Callable[[Any], None] | None,
) -> Outcome | None:
    """Prepare the job's sandbox and options, then run its session(s) in its execution; what
    can't be prepared raises before an execution is opened (or an earlier one emptied)."""
    spec = JobSpec.model_validate(job.spec)
    collector_for(job.kind)
    sandbox = _sandbox(job)
    try:
        options = build_options(spec, sandbox)
        execution = _fresh_execution(job)
        # The task is read here: the event loop's thread may not touch the database.
        session = _collect(job, job.task, execution, options, owner, progress, on_message)
        return asyncio.run(session)
    finally:
        shutil.rmtree(sandbox, ignore_errors=True)


def _finished(job: CollectionJob) -> None:
    """Tell the job's owners (its batch) it ended. Their failure is not the job's: the
    reconciler catches up with what they left undone (a batch not yet finished)."""
    for hooks in HOOKS:
        try:
            hooks.finished(job)
        except Exception:  # noqa: BLE001 - logged; the job itself has ended
            log.exception("job %s: %s failed after the job ended", job.pk, type(hooks).__name__)


def close_execution(execution: Execution | None, status: str, error: str) -> None:
    """Close a job's execution that its session left open (the session never started, or its
    worker died): failed or cancelled with `error`, partial. Nothing of a session stored: an
    infrastructure failure, so no training example."""
    if execution is None:
        return
    with transaction.atomic():
        found = Execution.objects.select_for_update().filter(
            pk=execution.pk, status__in=(TaskStatus.PENDING, TaskStatus.IN_PROGRESS)
        )
        open_ = found.first()
        if open_ is None:
            return  # its session closed it
        stored = open_.messages.exists()
        finish(open_, Outcome(status, error=error, partial=True, infrastructure=not stored))


def stop_job(job: CollectionJob) -> None:
    """Cancel a job: a queued one now, a running one at its worker's next check, or now when
    its worker is gone (its lease lapsed). Raises `IllegalTransition` when it has ended."""
    job.request_cancel()
    if job.lease_lapsed:
        revive(job)  # cancel_requested: cancelled


def revive(job: CollectionJob) -> str:
    """`LeasedJob.revive` for a collection job: one that ends (cancelled, or out of attempts)
    has its open execution closed and its owners (its batch) told."""
    what = job.revive()
    if what in ("cancelled", "failed"):
        _abandoned(job)
    return what


def _abandoned(job: CollectionJob) -> None:
    job.refresh_from_db()
    status = TaskStatus.CANCELLED if job.status == JobStatus.CANCELLED else TaskStatus.FAILED
    close_execution(job.execution, status, job.error)
    _finished(job)


def _acquire(job: CollectionJob, owner: str) -> bool:
    """Take the job under our lease; False when it is finished already (a redelivery)."""
    try:
        job.acquire(owner)
    except IllegalTransition as exc:
        if job.is_finished or job.cancel_requested:
            return False
        # Running under a live lease elsewhere: let the broker retry after its backoff.
        raise JobError(f"job {job.pk} is leased by {job.lease_owner}", retryable=True) from exc
    return True


def _fresh_execution(job: CollectionJob) -> Execution:
    """The job's execution, emptied if an earlier attempt died mid-session."""
    spec = JobSpec.model_validate(job.spec)
    with transaction.atomic():
        execution = job.execution
        if execution is None:
            execution = open_execution(job.task, source=spec.source, created_by=job.created_by)
            CollectionJob.objects.filter(pk=job.pk).update(execution=execution)
            job.execution = execution
        elif job.attempts > 1:
            lost = execution.messages.count()
            reset_execution(
                execution,
                interrupted_attempts=job.attempts - 1,
                messages_lost_with_worker=lost,
            )
    return execution


SANDBOX_NAME = re.compile(r"job-(\d+)-attempt-(\d+)")


def sandboxes_dir() -> Path:
    """Where this machine's workers make their sessions' sandboxes."""
    return Path(settings.DATA_DIR) / "sandboxes"


def _sandbox(job: CollectionJob) -> Path:
    root = sandboxes_dir() / f"job-{job.pk}-attempt-{job.attempts}"
    shutil.rmtree(root, ignore_errors=True)
    workspace = job.spec.get("workspace")
    if workspace:
        shutil.copytree(workspace, root / "work")
    else:
        (root / "work").mkdir(parents=True)
    (root / "config").mkdir(exist_ok=True)
    return root


def remove_stale_sandboxes() -> int:
    """Remove the sandboxes on this machine that no running attempt uses (those of attempts
    whose worker was killed); how many. Listed before the jobs are read: a sandbox made after
    its job was taken is never mistaken for a stale one."""
    found = {}
    for path in sandboxes_dir().glob("job-*-attempt-*"):
        if match := SANDBOX_NAME.fullmatch(path.name):
            found[path] = (int(match[1]), int(match[2]))
    running = set(
        CollectionJob.objects.filter(
            status=JobStatus.RUNNING, pk__in={pk for pk, _ in found.values()}
        ).values_list("pk", "attempts")
    )
    stale = [path for path, key in found.items() if key not in running]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return len(stale)


def build_options(spec: JobSpec, sandbox: Path) -> ClaudeAgentOptions:
    """The session's options: its sandbox, tools, limits and model, and an environment that
    keeps the CLI's state in the sandbox (never the user's ~/.claude) and contacts only the
    configured model endpoint."""
    work = sandbox / "work"
    env: dict[str, str]
    if spec.backend == "scripted":
        from collection.scripted_model.runtime import scripted_env

        env = scripted_env(
            spec.policy, spec.seed, spec.script, cwd=work, config_dir=sandbox / "config"
        )
    else:
        env = claude_env(sandbox / "config", spec.timeout_s)
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
    task: Task,
    execution: Execution,
    options: ClaudeAgentOptions,
    owner: str,
    progress: dict[str, Any],
    listener: Callable[[Any], None] | None = None,
) -> Outcome | None:
    """Run the job's collector under its time limit and cancel checks, counting `progress`.
    None: the job succeeded (whatever the session's outcome, which is data); else why the job
    failed or stopped."""
    spec = JobSpec.model_validate(job.spec)

    def on_message(message: Any) -> None:
        progress["messages"] += 1
        for block in getattr(message, "content", None) or []:
            if isinstance(block, ToolUseBlock):
                progress["tool_calls"] += 1
                progress["last"] = block.name
        if isinstance(message, SystemMessage) and message.subtype == "api_retry":
            progress["last"] = describe_retry(message.data)
        if listener:
            listener(message)

    control = LeasedControl(job_id=job.pk, owner=owner)
    run = JobRun(task, spec, options, execution, control, on_message)
    work = asyncio.create_task(collector_for(job.kind).collect(run))

    def stop(status: str, error: str) -> None:
        if control.stopping is None:
            control.stopping = Outcome(status, error=error, partial=True)
            work.cancel()

    loop = asyncio.get_running_loop()
    timer = loop.call_later(
        spec.timeout_s, stop, TaskStatus.FAILED, f"timed out after {spec.timeout_s:g}s"
    )
    watcher = asyncio.create_task(_watch(job.pk, owner, progress, work, stop))
    try:
        result = await work
    except asyncio.CancelledError:
        if control.stopping is None:
            raise  # we are being cancelled ourselves
        return control.stopping
    except DatabaseError:
        raise  # not the session's failure: the job runs again once the database is back
    except Exception as exc:  # the session crashed: its execution says how
        return Outcome(TaskStatus.FAILED, error=describe_crash(exc)[:2000])
    finally:
        timer.cancel()
        watcher.cancel()
    if result.outcome.infrastructure:  # nothing the agent did: the job failed, not the agent
        return replace(result.outcome, status=TaskStatus.FAILED)
    return control.stopping


def describe_crash(exc: Exception) -> str:
    """Why a session crashed, in words: a CLI that exited on a signal says which ("the Claude
    Code CLI was stopped by SIGTERM (exit code 143)"), not only its exit code."""
    text = f"{type(exc).__name__}: {exc}"
    code = exc.exit_code if isinstance(exc, ProcessError) else None
    # A signal kills a child as -N (asyncio's returncode); a CLI that handles it exits 128 + N.
    number = -code if code is not None and code < 0 else (code or 0) - 128
    if number not in set(signal.Signals):
        return text
    name = signal.Signals(number).name
    return f"the Claude Code CLI was stopped by {name} (exit code {code})"


def claude_env(config_dir: Path, timeout_s: float) -> dict[str, str]:
    """For real Claude (the API, or a gateway named by ANTHROPIC_BASE_URL with its key, both
    inherited from the worker's environment): the session's own config folder, no telemetry,
    error reports or update checks, and API retries that fit in the job's time limit."""
    from collection.scripted_model.runtime import OFFLINE_ENV  # the CLI kept quiet, as there

    config_dir.mkdir(parents=True, exist_ok=True)
    return {
        **OFFLINE_ENV,
        "CLAUDE_CONFIG_DIR": str(config_dir),
        "CLAUDE_CODE_MAX_RETRIES": str(retries_within(timeout_s)),
        # One request may not outlive the job.
        "API_TIMEOUT_MS": str(int(min(timeout_s, 600) * 1000)),
    }


def retries_within(timeout_s: float) -> int:
    """How many API retries fit in half the time limit, with the CLI's backoff (about 0.5 s
    doubling per attempt, capped at 32 s); the other half is left for the session itself."""
    retries, waited, delay = 0, 0.0, 0.5
    while retries < 10 and waited + delay <= timeout_s / 2:
        waited, retries, delay = waited + delay, retries + 1, min(delay * 2, 32.0)
    return retries


def describe_retry(data: dict[str, Any]) -> str:
    """An api_retry system message as a progress line: "API retry 2/5 (529, waiting 2.0 s)"."""
    attempt, limit = data.get("attempt", "?"), data.get("max_retries", "?")
    status = data.get("error_status") or data.get("error") or "error"
    delay = float(data.get("retry_delay_ms") or 0) / 1000
    return f"API retry {attempt}/{limit} ({status}, waiting {delay:.1f} s)"


async def _watch(
    job_id: int,
    owner: str,
    progress: dict[str, Any],
    work: asyncio.Task[Any],
    stop: Callable[[str, str], None],
) -> None:
    """Renew the lease and publish progress every few seconds; stop the work on request."""
    interval = max(1.0, lease_seconds() / 4)
    while not work.done():
        reason = await asyncio.to_thread(renew, job_id, owner, dict(progress))
        if reason:
            stop(TaskStatus.CANCELLED, reason)
            return
        await asyncio.sleep(interval)
