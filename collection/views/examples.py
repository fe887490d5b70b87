"""The dashboard, the example list and an example's page, where reviewers rule on it."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.db.models import Avg, Count, Q, Sum
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event
from pydantic import ValidationError

from collection.forms import ReviewForm
from collection.models import (
    Category,
    Difficulty,
    Execution,
    Source,
    TaskStatus,
    TrainingExample,
)
from collection.queries import ExampleFilters, filter_examples
from collection.review import review_example
from collection.roles import REVIEW, require_perm, signed_in_user
from trainingdash.http import HtmxHttpRequest

PAGE_SIZE = 25


def _get_example(pk: int) -> TrainingExample:
    return get_object_or_404(
        TrainingExample.objects.select_related("execution__task", "reviewer"), pk=pk
    )


# The example table's columns: (sort name, heading); see collection.queries.SORTS.
COLUMNS = [
    ("task", "Task"),
    ("category", "Category"),
    ("difficulty", "Difficulty"),
    ("status", "Status"),
    ("quality", "Quality"),
    ("golden", "Golden"),
    ("validated", "Validated"),
    ("cost", "Cost"),
]


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
        {"examples": examples, "executions": executions, "recent": recent, "columns": COLUMNS},
    )


@require_GET
def example_list(request: HtmxHttpRequest) -> HttpResponse:
    try:
        filters = ExampleFilters.from_query(request.GET.dict() | {"page": ""})
        error = ""
    except ValidationError as exc:
        filters, error = ExampleFilters(), _describe(exc)
    page = Paginator(filter_examples(filters), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "filters": filters,
        "error": error,
        "categories": Category.choices,
        "difficulties": Difficulty.choices,
        "statuses": TaskStatus.choices,
        "sources": Source.choices,
        "columns": COLUMNS,
        "sort": filters.sort or "",  # the headings link to sorting by their column
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
@require_perm(REVIEW)
def example_review(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    example = _get_example(pk)
    form = ReviewForm(request.POST)
    if not form.is_valid():
        template = "collection/example_detail.html#review"
        return render(request, template, {"example": example, "form": form}, status=400)
    review_example(example, signed_in_user(request), **form.cleaned_data)
    if not request.htmx:
        return redirect(example)
    form = ReviewForm(initial=_review_initial(example))
    response = render(
        request, "collection/example_detail.html#review", {"example": example, "form": form}
    )
    return trigger_client_event(response, "example-reviewed", {"id": example.pk})


def _review_initial(example: TrainingExample) -> dict[str, Any]:
    return {
        "is_golden": example.is_golden,
        "validated": example.validated,
        "validator_notes": example.validator_notes,
        "tags": ", ".join(example.tags),
    }


def _describe(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


def example_bulk(request: HtmxHttpRequest) -> HttpResponse:
    """Stub: being built (issue 10)."""
    raise Http404("not built yet")
