"""Exports: the list of bundles, starting an export (from the example list), one job with live
progress, cancelling or retrying it, and downloading its bundle (admins)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, Http404, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect
from pydantic import BaseModel, ConfigDict, ValidationError

from collection.models import IllegalTransition
from collection.queries import Cursor, describe
from collection.roles import require_perm, signed_in_user
from exports.bundles import format_choices, open_bundle
from exports.jobs import (
    ExportRequestError,
    cancel_export,
    delete_bundle,
    retry_export,
    start_export,
)
from exports.models import ExportJob
from exports.options import ExportOptions
from trainingdash.http import HtmxHttpRequest, render_progress

# What the pages need: reading the list and a job (every role), exporting and managing export
# jobs and downloading bundles (admins: `collection.roles.sync_roles` gives viewers and
# reviewers only the `view_` permissions of this app).
VIEW_EXPORTS = "exports.view_exportjob"
EXPORT = "exports.add_exportjob"
MANAGE_EXPORTS = "exports.change_exportjob"
DOWNLOAD = "exports.download_exportjob"

PAGE_SIZE = 50
ACTIONS = {"cancel": cancel_export, "retry": retry_export}


@require_GET
@require_perm(VIEW_EXPORTS)
def index(request: HtmxHttpRequest) -> HttpResponse:
    """Every export, newest first, a page at a time (`before` = the last job id seen)."""
    jobs = ExportJob.objects.select_related("created_by").defer("manifest").order_by("-pk")
    if (before := request.GET.get("before", "")).isdigit():
        jobs = jobs.filter(pk__lt=int(before))
    jobs_page = list(jobs[: PAGE_SIZE + 1])
    more = len(jobs_page) > PAGE_SIZE
    titles = dict(format_choices())
    context = {
        "rows": [_Row(job, titles.get(job.format, job.format)) for job in jobs_page[:PAGE_SIZE]],
        "next_cursor": jobs_page[PAGE_SIZE - 1].pk if more else None,
        "can_download": request.user.has_perm(DOWNLOAD),
        "retention_days": settings.TRAININGDASH_EXPORT_RETENTION_DAYS,
    }
    return render(request, "exports/index.html", context)


@dataclass
class _Row:
    """One export in the list, with what the page shows of it."""

    job: ExportJob
    title: str

    @property
    def left_out(self) -> int:
        return sum((self.job.counts.get("left_out") or {}).values())


class ExportRequest(BaseModel):
    """What the example list's export control posts: a format, the list's query, and either
    "every match of that query" or the checked rows; options (form checkboxes: "on")."""

    model_config = ConfigDict(extra="ignore")

    format: str
    scope: Literal["filter", "selected"] = "filter"
    query: str = ""
    ids: list[int] = []
    include_thinking: bool = False
    subagents: Literal["separate", "coordinator_only"] = "separate"
    keep_duplicates: bool = False
    golden_only: bool = False
    seed: int = 0

    def options(self) -> ExportOptions:
        return ExportOptions(
            include_thinking=self.include_thinking,
            subagents=self.subagents,
            exclude_duplicates=not self.keep_duplicates,
            golden_only=self.golden_only,
            seed=self.seed,
        )


@require_POST
@require_perm(EXPORT)
def create(request: HtmxHttpRequest) -> HttpResponse:
    """Queue an export and go to its page; a bad request goes back to the list, saying why."""
    data = {k: request.POST[k] for k in request.POST if k != "ids"}
    query = request.POST.get("query", "")
    try:
        asked = ExportRequest.model_validate(data | {"ids": request.POST.getlist("ids")})
        job = _start(asked, signed_in_user(request))
    except (ValidationError, ExportRequestError) as exc:
        messages.error(request, f"Nothing exported: {_describe(exc)}")
        return _go(request, f"{reverse('collection-example-list')}?{query}".rstrip("?"))
    return _go(request, reverse("exports-job-detail", args=[job.pk]))


def _start(asked: ExportRequest, user: Any) -> ExportJob:
    if asked.scope == "selected":
        return start_export(asked.format, asked.options(), example_ids=asked.ids, user=user)
    _cursor, filters = Cursor.split_query(QueryDict(asked.query).dict())
    return start_export(asked.format, asked.options(), filters=filters, user=user)


def _describe(exc: Exception) -> str:
    return describe(exc) if isinstance(exc, ValidationError) else str(exc)


def _go(request: HtmxHttpRequest, url: str) -> HttpResponse:
    """A redirect that works for a plain form post and for htmx (which follows HX-Redirect)."""
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _get_job(pk: int) -> ExportJob:
    return get_object_or_404(ExportJob.objects.select_related("created_by"), pk=pk)


def _detail_context(request: HtmxHttpRequest, job: ExportJob) -> dict[str, Any]:
    manifest = job.manifest or {}
    return {
        "job": job,
        "title": dict(format_choices()).get(job.format, job.format),
        "files": sorted((manifest.get("files") or {}).items()),
        "findings": (manifest.get("findings") or [])[:20],
        "redactions": sorted((manifest.get("redactions") or {}).items()),
        "left_out": sorted((job.counts.get("left_out") or {}).items()),
        "can_download": request.user.has_perm(DOWNLOAD),
        "can_manage": request.user.has_perm(MANAGE_EXPORTS),
    }


@require_GET
@require_perm(VIEW_EXPORTS)
def job_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    job = _get_job(pk)
    context = _detail_context(request, job)
    return render_progress(request, "exports/job_detail.html", context, done=job.is_finished)


@require_POST
@require_perm(MANAGE_EXPORTS)
def job_action(request: HtmxHttpRequest, pk: int, action: str) -> HttpResponse:
    if action not in ACTIONS:
        raise Http404(f"unknown export action {action!r}")
    job = _get_job(pk)
    try:
        ACTIONS[action](job)
    except IllegalTransition as exc:
        messages.error(request, f"Can't {action} this export: {exc}")
        return render(request, "exports/job_detail.html", _detail_context(request, job), status=409)
    return redirect("exports-job-detail", pk=job.pk)


@require_GET
@require_perm(DOWNLOAD)
def download(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Stream a job's bundle from the exports storage (shared with the workers, wherever they
    run). The file is found from the job row (a name we chose, checked again), never from the
    request; an expired bundle is deleted and answered 410 Gone."""
    job = _get_job(pk)
    if job.is_expired and job.bundle_name:
        delete_bundle(job)
    if job.is_expired:
        return render(request, "exports/gone.html", {"job": job}, status=410)
    stored = open_bundle(job.bundle_name) if job.has_bundle else None
    if stored is None:
        raise Http404("this export has no bundle")
    response = FileResponse(stored, as_attachment=True, filename=job.bundle_name)
    return cast(HttpResponse, response)  # streamed; typed as the guarded views' return type
