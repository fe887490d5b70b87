"""Export jobs: start one, run it once under a lease, cancel or retry it, prune old bundles.

    job = start_export("jsonl", ExportOptions(), filters={"min_quality": 0.8}, user=user)
    job = start_export("messages", ExportOptions(), example_ids=[3, 5, 8], user=user)
    run_export_job(job.pk)     # what the actor calls; the zip lands in storages["exports"]
    prune_expired()            # delete bundles past their retention (runs with every export)

The worker builds the zip on its own disk and saves it to the exports storage once complete,
so a web process on another machine serves it. A worker killed midway leaves only temporary
files (or, killed while saving, a part of the bundle under its name, which no finished job
points at) and a running job whose lease lapses; the next delivery takes it over and starts
again, clearing the dead attempt's leftovers first.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.db.models import QuerySet
from django.utils import timezone

from collection.models import IllegalTransition, TrainingExample, lease_seconds
from collection.queries import ExampleFilters, filter_examples
from exports.bundles import (
    build_bundle,
    delete_stored_bundle,
    format_choices,
    remove_stale_temporaries,
    store_bundle,
    work_dir,
)
from exports.models import ExportJob
from exports.options import ExportOptions
from trainingdash.broker import JobError

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"
# Progress is written (and the lease renewed, and a cancel noticed) at most this often.
PROGRESS_EVERY_S = 0.5


class ExportCancelled(Exception):
    """A user asked a running export to stop."""


class ExportRequestError(ValueError):
    """An export asked for with a format, option or filter we can't take; says which."""


def start_export(
    format_name: str,
    options: ExportOptions,
    *,
    filters: ExampleFilters | dict[str, Any] | None = None,
    example_ids: list[int] | None = None,
    user: Any = None,
) -> ExportJob:
    """Store an export job and queue it once the surrounding transaction commits.

    `example_ids` exports exactly those examples; without it, every example `filters` match.
    """
    if format_name not in dict(format_choices()):
        known = ", ".join(name for name, _title in format_choices())
        raise ExportRequestError(f"unknown format {format_name!r}; choose one of {known}")
    if example_ids is not None and not example_ids:
        raise ExportRequestError("select some examples first (or export the whole filter)")
    job = ExportJob.objects.create(
        format=format_name,
        options=options.model_dump(mode="json"),
        filters=filters_json(filters) if example_ids is None else {},
        example_ids=sorted(set(example_ids)) if example_ids is not None else None,
        created_by=user,
    )
    job.queue()
    return job


def filters_json(filters: ExampleFilters | dict[str, Any] | None) -> dict[str, Any]:
    """The filters as the manifest and the job row keep them: only what was set. The sort
    is left out: an export is always in example order."""
    parsed = filters if isinstance(filters, ExampleFilters) else ExampleFilters(**(filters or {}))
    return parsed.model_dump(mode="json", exclude_defaults=True, exclude={"sort"})


def job_examples(job: ExportJob) -> QuerySet[TrainingExample]:
    """The examples a job exports: its selection, or every match of its filters."""
    return select_examples(job.filters, job.example_ids)


def select_examples(
    filters: dict[str, Any] | None, example_ids: list[int] | None = None
) -> QuerySet[TrainingExample]:
    """Exactly `example_ids` when given, else every example `filters` match; in id order."""
    if example_ids is not None:
        return TrainingExample.objects.filter(pk__in=example_ids).order_by("pk")
    return filter_examples(ExampleFilters(**(filters or {}))).order_by("pk")


def bundle_name(job: ExportJob) -> str:
    """The bundle's file name: ours, from the job's id and format (never from a request)."""
    return f"export-{job.pk}-{job.format}.zip"


# --- running -------------------------------------------------------------------------------------


def run_export_job(job_id: int, owner: str | None = None) -> ExportJob | None:
    """Build a job's bundle once. Returns the finished job, or None when this delivery has
    nothing to do (finished already, or cancelled before it started).

    Raises a retryable `JobError` when the database or a live lease is in the way.
    """
    owner = owner or f"{WORKER_ID}:{threading.get_ident()}:{uuid.uuid4().hex[:6]}"
    try:
        prune_expired()
        job = ExportJob.objects.filter(pk=job_id).first()
        if job is None or not _acquire(job, owner):
            return None
    except DatabaseError as exc:
        raise JobError(f"export {job_id}: database unavailable: {exc}", retryable=True) from exc
    _run(job, owner)
    return job


def _acquire(job: ExportJob, owner: str) -> bool:
    try:
        job.acquire(owner)
    except IllegalTransition as exc:
        if job.is_finished or job.cancel_requested:
            return False
        raise JobError(f"export {job.pk} is leased by {job.lease_owner}", retryable=True) from exc
    return True


def _run(job: ExportJob, owner: str) -> None:
    """Build the bundle and move the job to its final state, whatever happens."""
    reporter = _Reporter(job.pk, owner)
    name = bundle_name(job)
    local = work_dir() / name
    try:
        bundle = build_bundle(
            job_examples(job),
            job.format,
            ExportOptions(**job.options),
            local,
            filters=job.filters if job.example_ids is None else None,
            selected=len(job.example_ids) if job.example_ids is not None else None,
            progress=reporter,
        )
        size = store_bundle(local, name)
    except ExportCancelled:
        job.cancel(progress_done=reporter.done)
        return
    except DatabaseError as exc:
        # The lease lapses and a redelivery starts the export again once the database is back.
        raise JobError(f"export {job.pk}: database unavailable: {exc}", retryable=True) from exc
    except Exception as exc:  # noqa: BLE001 - anything else fails the job, with the reason
        job.fail(f"{type(exc).__name__}: {exc}", progress_done=reporter.done)
        return
    finally:
        local.unlink(missing_ok=True)  # stored (or failed): the local copy has served
    job.finish(
        bundle_name=name,
        size=size,
        counts=bundle.counts,
        manifest=bundle.manifest,
        progress_done=reporter.total,
        progress_total=reporter.total,
        expires_at=timezone.now() + timedelta(days=settings.TRAININGDASH_EXPORT_RETENTION_DAYS),
    )


class _Reporter:
    """The pipeline's progress callback: publishes progress, renews the lease and stops the
    export when a cancel was asked, at most every PROGRESS_EVERY_S seconds."""

    def __init__(self, job_id: int, owner: str) -> None:
        self.job_id, self.owner = job_id, owner
        self.done = self.total = 0
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        now = time.monotonic()
        if now - self.last < PROGRESS_EVERY_S and done < total:
            return
        self.last = now
        expires = timezone.now() + timedelta(seconds=lease_seconds())
        rows = ExportJob.objects.filter(pk=self.job_id, lease_owner=self.owner)
        rows.update(progress_done=done, progress_total=total, lease_expires_at=expires)
        if rows.filter(cancel_requested=True).exists():
            raise ExportCancelled


# --- cancelling, retrying, pruning ------------------------------------------------------------


def cancel_export(job: ExportJob) -> None:
    """Queued: cancelled now; running: its worker stops at its next progress report."""
    job.request_cancel()


def retry_export(job: ExportJob) -> None:
    """Run a failed or cancelled export again from the start."""
    job.requeue()


def prune_expired(now: datetime | None = None) -> int:
    """Delete the bundles past their retention (and dead workers' temporary files); the jobs
    stay listed, without a bundle. Returns how many bundles were deleted."""
    now = now or timezone.now()
    expired = ExportJob.objects.filter(expires_at__lte=now).exclude(bundle_name="")
    pruned = 0
    for job in expired.only("pk", "bundle_name"):
        delete_bundle(job)
        pruned += 1
    remove_stale_temporaries(work_dir())
    return pruned


def delete_bundle(job: ExportJob) -> None:
    """Remove a job's bundle from the exports storage and forget its name."""
    delete_stored_bundle(job.bundle_name)
    ExportJob.objects.filter(pk=job.pk).update(bundle_name="")
    job.bundle_name = ""
