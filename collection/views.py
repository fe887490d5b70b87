from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Avg, Count, Q, Sum
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling, trigger_client_event
from pydantic import ValidationError

from collection.forms import GenerateForm, ImportUploadForm, ReviewForm, TemplateUploadForm
from collection.jobs.batches import (
    GenerationParams,
    batch_stats,
    cancel_batch,
    refresh_status,
    resume_batch,
    start_batch,
)
from collection.jobs.uploads import UploadError, receive_upload
from collection.models import (
    TEMPLATE_CATEGORIES,
    Category,
    Difficulty,
    Execution,
    GenerationBatch,
    ImportUpload,
    Source,
    TaskStatus,
    TrainingExample,
)
from collection.queries import ExampleFilters, filter_examples
from collection.review import review_example
from collection.roles import ADMIN, REVIEWER, has_role, role_required
from collection.task_templates import TaskTemplateLibrary, TemplateError
from collection.task_templates.upload import install_template_archive
from trainingdash.http import HtmxHttpRequest


def _get_example(pk: int) -> TrainingExample:
    return get_object_or_404(
        TrainingExample.objects.select_related("execution__task", "reviewer"), pk=pk
    )


@login_not_required
@require_GET
def healthz(request: HtmxHttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_GET
def dashboard(request: HtmxHttpRequest) -> HttpResponse:
    examples = TrainingExample.objects.aggregate(
        total=Count("id"),
        golden=Count("id", filter=Q(is_golden=True)),
        validated=Count("id", filter=Q(validated=True)),
        avg_quality=Avg("quality_score"),
    )
    executions = Execution.objects.aggregate(
        total=Count("id"),
        succeeded=Count("id", filter=Q(success=True)),
        cost=Sum("cost_usd"),
    )
    recent = filter_examples()[:10]
    return render(
        request,
        "collection/dashboard.html",
        {"examples": examples, "executions": executions, "recent": recent},
    )


@require_GET
def example_list(request: HtmxHttpRequest) -> HttpResponse:
    try:
        filters = ExampleFilters.from_query(request.GET.dict() | {"page": ""})
        error = ""
    except ValidationError as exc:
        filters, error = ExampleFilters(), _describe(exc)
    page = Paginator(filter_examples(filters), 25).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "filters": filters,
        "error": error,
        "categories": Category.choices,
        "difficulties": Difficulty.choices,
        "statuses": TaskStatus.choices,
        "sources": Source.choices,
    }
    template = "collection/example_list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#results"
    return render(request, template, context, status=400 if error else 200)


@require_GET
def example_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    example = _get_example(pk)
    execution = example.execution
    context = {
        "example": example,
        "execution": execution,
        "messages_": execution.messages.all(),
        "tool_calls": execution.tool_calls.all(),
        "actions": execution.actions.select_related("parent"),
        "form": ReviewForm(initial=_review_initial(example)),
    }
    return render(request, "collection/example_detail.html", context)


@require_POST
@role_required(REVIEWER)
def example_review(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    example = _get_example(pk)
    form = ReviewForm(request.POST)
    if not form.is_valid():
        template = "collection/example_detail.html#review"
        return render(request, template, {"example": example, "form": form}, status=400)
    review_example(example, request.user, **form.cleaned_data)
    if not request.htmx:
        return redirect(example)
    form = ReviewForm(initial=_review_initial(example))
    response = render(
        request, "collection/example_detail.html#review", {"example": example, "form": form}
    )
    return trigger_client_event(response, "example-reviewed", {"id": example.pk})


def _review_initial(example: TrainingExample) -> dict:
    return {
        "is_golden": example.is_golden,
        "validated": example.validated,
        "validator_notes": example.validator_notes,
        "tags": ", ".join(example.tags),
    }


def _describe(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


# --- generation batches ------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
def batch_list(request: HtmxHttpRequest) -> HttpResponse:
    form = GenerateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            batch = start_batch(GenerationParams(**form.params()), user=request.user)
        except (ValidationError, ValueError) as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("collection-batch-detail", pk=batch.pk)
    batches = GenerationBatch.objects.select_related("created_by")[:50]
    status = 400 if form.errors else 200
    return render(
        request, "collection/batch_list.html", {"form": form, "batches": batches}, status=status
    )


@require_GET
@role_required(ADMIN)
def batch_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    batch = refresh_status(get_object_or_404(GenerationBatch, pk=pk))
    context = {
        "batch": batch,
        "stats": batch_stats(batch),
        "jobs": batch.jobs.select_related("task", "execution__training_example"),
    }
    if request.htmx:
        response = render(request, "collection/batch_detail.html#progress", context)
        # Finished: tell htmx to stop polling (status 286).
        return HttpResponseStopPolling(response.content) if batch.status != "running" else response
    return render(request, "collection/batch_detail.html", context)


@require_POST
@role_required(ADMIN)
def batch_action(request: HtmxHttpRequest, pk: int, action: str) -> HttpResponse:
    batch = get_object_or_404(GenerationBatch, pk=pk)
    if action == "cancel":
        cancel_batch(batch)
    elif action == "resume":
        resume_batch(batch)
    else:
        raise Http404(f"unknown batch action {action!r}")
    return redirect("collection-batch-detail", pk=batch.pk)


# --- task templates ----------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def template_list(request: HtmxHttpRequest) -> HttpResponse:
    form = TemplateUploadForm()
    added = None
    if request.method == "POST":
        if not has_role(request.user, ADMIN):
            raise PermissionDenied("needs the admin role")
        form = TemplateUploadForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                added = install_template_archive(form.cleaned_data["archive"])
            except TemplateError as exc:
                form.add_error("archive", str(exc))
    library = TaskTemplateLibrary.load()
    context = {
        "form": form,
        "added": added,
        "library": library,
        "by_category": {c: library.templates(category=c) for c in TEMPLATE_CATEGORIES},
    }
    return render(
        request, "collection/template_list.html", context, status=400 if form.errors else 200
    )


# --- importing transcripts ---------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@role_required(REVIEWER)
def import_list(request: HtmxHttpRequest) -> HttpResponse:
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            record = receive_upload(form.cleaned_data["file"], request.user)
        except UploadError as exc:
            form.add_error("file", str(exc))
        else:
            return redirect("collection-import-detail", pk=record.pk)
    uploads = ImportUpload.objects.select_related("uploaded_by")[:50]
    status = 400 if form.errors else 200
    return render(
        request, "collection/import_list.html", {"form": form, "uploads": uploads}, status=status
    )


@require_GET
@role_required(REVIEWER)
def import_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    record = get_object_or_404(ImportUpload, pk=pk)
    context = {"upload": record, "report": record.report}
    if request.htmx:
        response = render(request, "collection/import_detail.html#report", context)
        running = record.status in ("queued", "running")
        return response if running else HttpResponseStopPolling(response.content)
    return render(request, "collection/import_detail.html", context)
