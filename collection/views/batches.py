"""Generation batches: start one, watch its progress, cancel or resume it (admins only)."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from django.contrib import messages
from django.db import transaction
from django.db.models import Count
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from pydantic import ValidationError

from collection.forms import GenerateForm
from collection.jobs.batches import (
    GenerationParams,
    batch_stats,
    can_resume,
    cancel_batch,
    refresh_status,
    resume_batch,
    start_batch,
)
from collection.models import ACTIVE_STATUSES, GenerationBatch, IllegalTransition, JobStatus
from collection.roles import GENERATE, require_perm
from trainingdash.broker import BrokerUnavailable, check_broker
from trainingdash.http import HtmxHttpRequest, render_progress

ACTIONS = {"cancel": cancel_batch, "resume": resume_batch}


@require_http_methods(["GET", "POST"])
@require_perm(GENERATE)
def batch_list(request: HtmxHttpRequest) -> HttpResponse:
    form = GenerateForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            batch = _start(GenerationParams(**form.params()), request.user)
        except (ValidationError, ValueError) as exc:
            form.add_error(None, str(exc))
            status = 400
        except BrokerUnavailable as exc:
            form.add_error(
                None,
                f"Nothing was started: {exc}. Start Redis (or `python3 -m trainingdash run`) "
                "and try again.",
            )
            status = 503
        else:
            if batch.status == JobStatus.FAILED:
                messages.error(
                    request,
                    "The job queue went down as the batch started: resume it "
                    "once the queue is back.",
                )
            return redirect("collection-batch-detail", pk=batch.pk)
    elif form.errors:
        status = 400
    batches = GenerationBatch.objects.select_related("created_by").annotate(
        job_count=Count("jobs")
    )[:50]
    return render(
        request, "collection/batch_list.html", {"form": form, "batches": batches}, status=status
    )


def _start(params: GenerationParams, user: Any) -> GenerationBatch:
    """Start a batch only when the job queue answers (else `BrokerUnavailable`, and nothing is
    created).

    Should the queue go down before the sends (they run once the batch is committed), the
    batch fails with the error and its jobs are cancelled, instead of staying "running" with
    nothing sent; a resume sends them once the queue is back."""
    check_broker()
    batch = None
    try:
        # The sends run when this block commits, with the batch in hand.
        with transaction.atomic():
            batch = start_batch(params, user=user)
    except BrokerUnavailable as exc:
        if batch is None:
            raise  # rolled back: nothing was created
        error = f"not sent to the workers: {exc}"
        for job in batch.jobs.filter(status__in=ACTIVE_STATUSES):
            with suppress(IllegalTransition):  # a worker took it after all
                job.cancel(error)
        with suppress(IllegalTransition):
            batch.fail(error)
    return batch


def _detail_context(batch: GenerationBatch) -> dict[str, Any]:
    return {
        "batch": batch,
        "params": GenerationParams.model_validate(batch.params),
        "stats": batch_stats(batch),
        "can_resume": can_resume(batch),
        "jobs": batch.jobs.select_related("task", "execution__training_example"),
    }


@require_GET
@require_perm(GENERATE)
def batch_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    batch = refresh_status(get_object_or_404(GenerationBatch, pk=pk))
    context = _detail_context(batch)
    done = not batch.is_active
    return render_progress(request, "collection/batch_detail.html", context, done=done)


@require_POST
@require_perm(GENERATE)
def batch_action(request: HtmxHttpRequest, pk: int, action: str) -> HttpResponse:
    batch = get_object_or_404(GenerationBatch, pk=pk)
    if action not in ACTIONS:
        raise Http404(f"unknown batch action {action!r}")
    if action == "resume" and not can_resume(batch):
        messages.error(request, "Nothing to resume: every planned session has run or is running.")
        context = _detail_context(refresh_status(batch))
        return render(request, "collection/batch_detail.html", context, status=400)
    if action == "resume":
        check_broker()  # down: the outage page, and nothing requeued that can't be sent
    ACTIONS[action](batch)
    return redirect("collection-batch-detail", pk=batch.pk)
