"""The reconciler: moves on the jobs and batches that nothing else would.

    reconcile()          # one pass; what it did, as counts ({"requeued": 1, ...})
    install(broker)      # a pass at each worker's start, then every period, in its process

A SIGKILLed worker, a Redis restarted without its queues, a hook failing after its job ended:
each leaves rows saying "running" or "queued" that no message will ever move. Each pass:

- a running job whose lease lapsed (its worker is gone) is queued again for its next attempt,
  which empties its execution first (nothing is stored twice); it fails once it has used up
  `COLLECTION_MAX_ATTEMPTS`, and ends cancelled when a cancel was asked (`runner.revive`).
  So is an import upload (its actor renews its lease while it imports; what a killed import
  stored is known to the next one and not stored again);
- a queued job whose message the broker no longer holds (lost with a Redis that does not
  persist, or stranded in a dead worker's hands) for a whole period is sent again;
- an execution left open by a job that has ended is closed;
- an active batch finishes once its jobs are all final, and sends its next jobs when none
  is in flight (`batches.refresh_status`);
- sandbox folders that no running attempt uses are removed.

Every worker process runs it (`TRAININGDASH_RECONCILE_SECONDS`, default 15; 0 turns it off).
Passes are safe to run at once on several machines: each change is a guarded transition or a
conditional UPDATE on the row as it is now, so of two reconcilers only one acts on a row.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import dramatiq
from django import db
from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name

from collection.jobs import batches, runner
from collection.models import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    SENT_AT,
    BackgroundJob,
    CollectionJob,
    Execution,
    GenerationBatch,
    JobStatus,
    LeasedJob,
    TaskStatus,
)
from trainingdash import broker as broker_module

log = logging.getLogger(__name__)


def period_seconds() -> float:
    """How often a worker reconciles (`TRAININGDASH_RECONCILE_SECONDS`; 0: never)."""
    return float(settings.TRAININGDASH_RECONCILE_SECONDS)


def reconcile(now: datetime | None = None) -> Counter[str]:
    """One pass over everything the reconciler looks after; what it did, by kind. A step that
    fails (the database or Redis down) is logged and left to the next pass."""
    done: Counter[str] = Counter()
    steps = (_revive_lapsed, _resend_lost, _close_left_open, _refresh_batches, _sandboxes)
    for step in steps:
        try:
            done.update(step(now or timezone.now()))
        except Exception:  # noqa: BLE001 - one step's failure must not stop the others
            log.exception("reconciler: %s failed; trying again next pass", step.__name__)
    if done:
        log.info("reconciler: %s", dict(done))
    return done


# --- running jobs whose worker is gone ---------------------------------------------------------


def _leased_models() -> list[type[LeasedJob]]:
    return [m for m in apps.get_models() if issubclass(m, LeasedJob)]


def _revive_lapsed(now: datetime) -> Counter[str]:
    done: Counter[str] = Counter()
    for model in _leased_models():
        jobs: QuerySet[Any] = model._default_manager.filter(
            status=JobStatus.RUNNING, lease_expires_at__lt=now
        )
        if model is CollectionJob:
            jobs = jobs.select_related("execution", "batch")
        for job in jobs:
            what = runner.revive(job) if isinstance(job, CollectionJob) else job.revive()
            if what:
                log.warning("reconciler: %s %s (its lease lapsed)", job, what)
                done[what] += 1
    return done


# --- queued jobs whose message is lost ---------------------------------------------------------


def _queued_models() -> list[type[BackgroundJob]]:
    return [m for m in apps.get_models() if issubclass(m, BackgroundJob) and m.actor_name]


def _resend_lost(now: datetime) -> Counter[str]:
    """Send again the queued jobs sent more than a period ago whose message the broker no
    longer holds (read after the jobs: a message processed meanwhile has moved its job on)."""
    done: Counter[str] = Counter()
    before = now - timedelta(seconds=period_seconds())
    for model in _queued_models():
        waiting = {pk: mark for pk, since, mark in _sent(model) if since < before}
        if not waiting:
            continue
        held = held_job_ids(model.queue_name, model.actor_name)
        if held is None:
            return done  # a broker we can't look into: nothing to compare with
        for pk in sorted(set(waiting) - held):
            if _resend(model, pk, waiting[pk]):
                log.warning("reconciler: %s %s lost its message; sent again", model.__name__, pk)
                done["resent"] += 1
    return done


def _sent(model: type[BackgroundJob]) -> Iterator[tuple[int, datetime, str | None]]:
    """The model's queued jobs, when each was sent and its sent mark. A collection job is sent
    when marked so (a batch keeps jobs queued unsent until their turn); others when created."""
    queued = model._default_manager.filter(status=JobStatus.QUEUED, cancel_requested=False)
    if model is not CollectionJob:
        for pk, created in queued.values_list("pk", "created_at"):
            yield pk, created, None
        return
    marked = Q(progress__has_key=SENT_AT) | Q(batch__isnull=True)
    jobs = CollectionJob.objects.filter(marked, status=JobStatus.QUEUED, cancel_requested=False)
    for pk, progress, created in jobs.values_list("pk", "progress", "created_at"):
        mark = progress.get(SENT_AT) if isinstance(progress, dict) else None
        yield pk, (datetime.fromisoformat(mark) if mark else created), mark


def _resend(model: type[BackgroundJob], pk: int, mark: str | None) -> bool:
    """Send one lost job again, once: a collection job's sent mark is moved on by a
    conditional UPDATE, so of two reconcilers only one sends it."""
    with transaction.atomic():
        if model is CollectionJob:
            same = Q(progress__sent_at=mark) if mark else ~Q(progress__has_key=SENT_AT)
            rows = CollectionJob.objects.filter(same, pk=pk, status=JobStatus.QUEUED)
            if not rows.update(progress={SENT_AT: timezone.now().isoformat()}):
                return False
        elif not model._default_manager.filter(pk=pk, status=JobStatus.QUEUED).exists():
            return False
        transaction.on_commit(lambda: broker_module.send(model.queue_name, model.actor_name, pk))
    return True


def held_job_ids(queue_name: str, actor_name: str) -> set[int] | None:
    """The ids of jobs whose message the broker holds for `actor_name`: waiting on the queue
    or its delay queue, or taken by a live worker. A message a dead worker took is not held:
    Dramatiq gives it back only when its random maintenance gets to it. None for a broker
    we can't look into."""
    broker = dramatiq.get_broker()
    if isinstance(broker, RedisBroker):
        payloads = _redis_messages(broker, queue_name)
    elif isinstance(broker, StubBroker):
        names = [n for n in (queue_name, dq_name(queue_name)) if n in broker.queues]
        payloads = [data for n in names for data in list(broker.queues[n].queue)]
    else:
        return None
    held = set()
    for data in payloads:
        message = json.loads(data)
        if message.get("actor_name") == actor_name and message.get("args"):
            held.add(int(message["args"][0]))
    return held


def _redis_messages(broker: RedisBroker, queue_name: str) -> list[bytes]:
    # Dramatiq's Redis layout (dramatiq/brokers/redis/dispatch.lua): a hash of every message
    # not yet acknowledged per queue, and a set per worker of the ids it took; workers beat
    # in a sorted set.
    client, ns = broker.client, broker.namespace
    dead_before = int(time.time() * 1000) - broker.heartbeat_timeout
    dead: list[bytes] = client.zrangebyscore(f"{ns}:__heartbeats__", 0, dead_before)  # type: ignore[assignment]
    found = []
    for name in (queue_name, dq_name(queue_name)):
        stranded: set[bytes] = set()
        for worker in dead:
            stranded |= client.smembers(f"{ns}:__acks__.{worker.decode()}.{name}")  # type: ignore[arg-type]
        for message_id, data in client.hscan_iter(f"{ns}:{name}.msgs"):
            if message_id not in stranded:
                found.append(data)
    return found


# --- executions, batches, sandboxes ------------------------------------------------------------


def _close_left_open(now: datetime) -> Counter[str]:
    """Close the executions of ended jobs that are still open (their worker died between
    ending the job and closing them)."""
    done: Counter[str] = Counter()
    open_ = Execution.objects.filter(
        status__in=(TaskStatus.PENDING, TaskStatus.IN_PROGRESS),
        job__status__in=FINISHED_STATUSES,
    ).select_related("job")
    for execution in open_:
        job = execution.job
        status = TaskStatus.CANCELLED if job.status == JobStatus.CANCELLED else TaskStatus.FAILED
        runner.close_execution(execution, status, job.error or "its job ended before it closed")
        done["closed"] += 1
    return done


def _refresh_batches(now: datetime) -> Counter[str]:
    done: Counter[str] = Counter()
    for batch in GenerationBatch.objects.filter(status__in=ACTIVE_STATUSES):
        if batches.refresh_status(batch).is_finished:
            done["batches_finished"] += 1
    return done


def _sandboxes(now: datetime) -> Counter[str]:
    removed = runner.remove_stale_sandboxes()
    return Counter({"sandboxes_removed": removed} if removed else {})


# --- running in a worker -----------------------------------------------------------------------


class ReconcilerMiddleware(dramatiq.Middleware):
    """Runs `reconcile` on a thread of each worker: once as it starts, then every period."""

    def __init__(self) -> None:
        self._running: dict[int, tuple[threading.Thread, threading.Event]] = {}

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        period = period_seconds()
        if period <= 0:
            return
        stop = threading.Event()
        thread = threading.Thread(
            target=_every, args=(period, stop), name="reconciler", daemon=True
        )
        self._running[id(worker)] = (thread, stop)
        thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        thread, stop = self._running.pop(id(worker), (None, None))
        if thread is not None and stop is not None:
            stop.set()
            thread.join(timeout=60)


def _every(period: float, stop: threading.Event) -> None:
    while True:
        try:
            reconcile()
        finally:
            db.connection.close()  # this thread's: no connection left open between passes
        if stop.wait(period):
            return


def install(broker: dramatiq.Broker) -> None:
    """Run the reconciler in the workers of `broker` (once, however often called)."""
    if not any(isinstance(m, ReconcilerMiddleware) for m in broker.middleware):
        broker.add_middleware(ReconcilerMiddleware())
