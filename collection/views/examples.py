"""The dashboard and the example list: filters, keyset pages and bulk actions over a whole
filtered result (reviewers and admins)."""

from __future__ import annotations

from typing import Any, Literal

from django.contrib import messages
from django.contrib.auth.models import User
from django.db.models import Avg, Count, Q, QuerySet, Sum
from django.http import HttpResponse, HttpResponseBadRequest, QueryDict
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event
from pydantic import BaseModel, ValidationError

from collection.models import (
    Category,
    Difficulty,
    Execution,
    Source,
    TaskStatus,
    TrainingExample,
)
from collection.queries import (
    ANY_TOOL,
    Cursor,
    ExampleFilters,
    describe,
    filter_examples,
    page_examples,
)
from collection.review import (
    ReviewError,
    add_tags,
    remove_tags,
    set_golden,
    set_validated,
)
from collection.roles import ADMIN, REVIEW, REVIEWER, require_perm, signed_in_user
from collection.scoring import rescore
from trainingdash.http import HtmxHttpRequest

# The example table's columns: (sort name, heading); see collection.queries.SORTS.
COLUMNS = [
    ("task", "Task"),
    ("category", "Category"),
    ("difficulty", "Difficulty"),
    ("status", "Status"),
    ("quality", "Quality"),
    ("golden", "Golden"),
    ("validated", "Validated"),
    ("turns", "Turns"),
    ("cost", "Cost"),
    ("created", "Created"),
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
    recent = page_examples(ExampleFilters(), size=10).rows
    return render(
        request,
        "collection/dashboard.html",
        {"examples": examples, "executions": executions, "recent": recent, "columns": COLUMNS},
    )


@require_GET
def example_list(request: HtmxHttpRequest) -> HttpResponse:
    return _render_list(request, request.GET)


def _render_list(
    request: HtmxHttpRequest, params: QueryDict, *, notice: str = "", error: str = ""
) -> HttpResponse:
    """The list page (or, for htmx, its results) for a list URL's query."""
    try:
        cursor, filters = Cursor.split_query(params.dict())
    except ValidationError as exc:
        cursor, filters, error = Cursor(), ExampleFilters(), describe(exc)
    context = filter_choices() | {
        "page": page_examples(filters, cursor),
        "filters": filters,
        "params": params,
        "error": error,
        "notice": notice,
        "columns": COLUMNS,
        "sort": filters.sort or "",  # the headings link to sorting by their column
        "bulk": request.user.has_perm(REVIEW),
        "bulk_actions": BULK_ACTIONS,
        "more_filters": sum(1 for name in MORE_FILTERS if params.get(name)),
    }
    template = "collection/example_list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#results"
    return render(request, template, context, status=400 if error else 200)


# Filters under "More filters": the <details> opens when one of them is set.
MORE_FILTERS = (
    *("source", "model", "tool", "tool_error", "tag", "reviewer", "bad_steps", "duplicates"),
    *("min_quality", "max_quality", "min_cost", "max_cost", "min_turns", "max_turns"),
    *("created_from", "created_to"),
)
# Tool names offered in the tool filters (any name can be typed).
KNOWN_TOOLS = (
    *("Agent", "Bash", "Edit", "Glob", "Grep", "LS", "MultiEdit", "NotebookEdit", "Read"),
    *("Task", "TodoWrite", "WebFetch", "WebSearch", "Write"),
)


def filter_choices() -> dict[str, Any]:
    reviewers = User.objects.filter(
        Q(groups__name__in=(REVIEWER, ADMIN)) | Q(is_superuser=True)
    ).distinct()
    return {
        "categories": Category.choices,
        "difficulties": Difficulty.choices,
        "statuses": TaskStatus.choices,
        "sources": Source.choices,
        "known_tools": KNOWN_TOOLS,
        "any_tool": ANY_TOOL,
        "reviewers": reviewers.order_by("username").values_list("username", flat=True),
    }


# name -> (label, what it did, whether it needs tags)
BULK_ACTIONS = {
    "golden": ("Mark golden", "marked golden", False),
    "not_golden": ("Mark not golden", "marked not golden", False),
    "validate": ("Validate", "validated", False),
    "tag": ("Add tags", "tagged", True),
    "untag": ("Remove tags", "untagged", True),
    "rescore": ("Rescore", "rescored", False),
}
# Rescoring runs in the request, one example at a time: more is for `manage.py rescore`.
RESCORE_LIMIT = 5000


class BulkRequest(BaseModel):
    """A bulk action over the checked rows (`ids`) or every match of the list's filters."""

    action: Literal["golden", "not_golden", "validate", "tag", "untag", "rescore"]
    ids: list[int] = []
    select: Literal["", "page", "all"] = ""
    tags: str = ""

    @property
    def tag_list(self) -> list[str]:
        return sorted({t.strip() for t in self.tags.split(",") if t.strip()})


@require_POST
@require_perm(REVIEW)
def example_bulk(request: HtmxHttpRequest) -> HttpResponse:
    """Run a bulk action, then show the list again (same filters and page) with what it did."""
    params = QueryDict(request.POST.get("query", ""))
    try:
        bulk = BulkRequest.model_validate(
            {"ids": request.POST.getlist("ids")}
            | {k: request.POST[k] for k in ("action", "select", "tags") if k in request.POST}
        )
        examples = _bulk_examples(bulk, params)
        notice = _run_bulk(bulk, examples, signed_in_user(request))
    except (ValidationError, BulkError, ReviewError) as exc:
        error = describe(exc) if isinstance(exc, ValidationError) else str(exc)
        if request.htmx:
            return _render_list(request, params, error=error)
        return HttpResponseBadRequest(error)
    if not request.htmx:
        messages.success(request, notice)
        return redirect(f"{reverse('collection-example-list')}?{params.urlencode()}")
    response = _render_list(request, params, notice=notice)
    return trigger_client_event(response, "examples-changed", {"action": bulk.action})


class BulkError(Exception):
    """A bulk request that can't be carried out as asked."""


def _bulk_examples(bulk: BulkRequest, params: QueryDict) -> QuerySet[TrainingExample]:
    if bulk.select == "all":
        _cursor, filters = Cursor.split_query(params.dict())
        return filter_examples(filters).order_by()
    if not bulk.ids:
        raise BulkError("Select some examples first (or all that match).")
    return TrainingExample.objects.filter(pk__in=bulk.ids)


def _run_bulk(bulk: BulkRequest, examples: QuerySet[TrainingExample], user: User) -> str:
    """Carry out the action through the review service; says what was done."""
    label, done, needs_tags = BULK_ACTIONS[bulk.action]
    if needs_tags and not bulk.tag_list:
        raise BulkError("tags: name at least one tag (comma-separated).")
    if bulk.action == "golden":
        count = set_golden(examples, user, True, via="bulk")
    elif bulk.action == "not_golden":
        count = set_golden(examples, user, False, via="bulk")
    elif bulk.action == "validate":
        count = set_validated(examples, user, True, via="bulk")
    elif bulk.action == "tag":
        count = add_tags(examples, user, bulk.tag_list, via="bulk")
    elif bulk.action == "untag":
        count = remove_tags(examples, user, bulk.tag_list, via="bulk")
    else:
        count = _rescore(examples)
    return f"{count} example{pluralize(count)} {done}."


def _rescore(examples: QuerySet[TrainingExample]) -> int:
    if examples.count() > RESCORE_LIMIT:
        raise BulkError(
            f"Rescoring more than {RESCORE_LIMIT} examples is a job for `manage.py rescore`."
        )
    return rescore(examples.select_related(None).select_related("execution__task"))
