"""Collection jobs: the list, one job with live progress, and cancelling or retrying it (admins)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from collection.jobs import dead_letters
from collection.jobs.collections import can_retry, cancel_collection, retry_collection
from collection.models import CollectionJob, IllegalTransition, JobStatus
from collection.roles import MANAGE_JOBS, require_perm
from trainingdash.http import HtmxHttpRequest, render_progress

PAGE_SIZE = 50
ACTIONS = {"cancel": cancel_collection, "retry": retry_collection}


def _jobs(request: HtmxHttpRequest) -> tuple[list[CollectionJob], int | None]:
    """One page of jobs, newest first, after the cursor `before` (a job id), and the next
    page's cursor (None on the last page)."""
    jobs = CollectionJob.objects.select_related("task", "execution", "created_by").order_by("-pk")
    jobs = jobs.defer("spec", "execution__usage", "execution__performance_metrics")
    if (status := request.GET.get("status", "")) in JobStatus.values:
        jobs = jobs.filter(status=status)
    if (task := request.GET.get("task", "")).isdigit():
        jobs = jobs.filter(task_id=int(task))
    if (before := request.GET.get("before", "")).isdigit():
        jobs = jobs.filter(pk__lt=int(before))
    rows = list(jobs[: PAGE_SIZE + 1])
    more = len(rows) > PAGE_SIZE
    return rows[:PAGE_SIZE], (rows[PAGE_SIZE - 1].pk if more else None)


@require_GET
def job_list(request: HtmxHttpRequest) -> HttpResponse:
    jobs, next_cursor = _jobs(request)
    context = {
        "jobs": jobs,
        "next_cursor": next_cursor,
        "status": request.GET.get("status", ""),
        "task": request.GET.get("task", ""),
        "statuses": JobStatus.choices,
        "dead": dead_letters.read(),
    }
    return render(request, "collection/job_list.html", context)


def _get_job(pk: int) -> CollectionJob:
    related = ("task", "execution__training_example", "batch", "created_by")
    return get_object_or_404(CollectionJob.objects.select_related(*related), pk=pk)


def _detail_context(job: CollectionJob) -> dict[str, Any]:
    example = getattr(job.execution, "training_example", None) if job.execution else None
    return {
        "job": job,
        "example": example,
        "wall_s": _wall_seconds(job),
        "can_retry": can_retry(job),
        "retry_via_batch": job.batch_id is not None and job.can("requeue"),
    }


def _wall_seconds(job: CollectionJob) -> float | None:
    """How long the job has run (until now, while it runs)."""
    if job.started_at is None:
        return None
    return ((job.finished_at or timezone.now()) - job.started_at).total_seconds()


@require_GET
def job_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    job = _get_job(pk)
    context = _detail_context(job)
    return render_progress(request, "collection/job_detail.html", context, done=job.is_finished)


@require_POST
@require_perm(MANAGE_JOBS)
def job_action(request: HtmxHttpRequest, pk: int, action: str) -> HttpResponse:
    if action not in ACTIONS:
        raise Http404(f"unknown job action {action!r}")
    job = _get_job(pk)
    try:
        ACTIONS[action](job)
    except IllegalTransition as exc:
        messages.error(request, f"Can't {action} this job: {exc}")
        context = _detail_context(job)
        return render(request, "collection/job_detail.html", context, status=409)
    return redirect("collection-job-detail", pk=job.pk)
