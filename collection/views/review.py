"""Reviewing: the review form and history on an example, step marks, and the review queue.

The queue walks the example list's filter (`?category=debugging&validated=false`) in the list's
order: it shows the first example not yet reviewed, or `?example=<pk>`, with links to the next
unreviewed one after it and to the one before it, and the progress ("37 of 120 reviewed").
Writes go through `collection.review`; HTMX gets fragments and an HX-Trigger event, plain forms
a redirect.

    review_panel_context(example)  # what `_review_panel.html` needs, for any page including it
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.db.models import Count, Q, QuerySet
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event
from pydantic import ValidationError

from collection import queries
from collection.forms import ReviewForm, StepMarkForm, error_text
from collection.models import Message, StepMark, TrainingExample
from collection.queries import ExampleFilters, filter_examples
from collection.review import history, mark_step, review_example, unmark_step
from collection.roles import REVIEW, require_perm, signed_in_user
from collection.viewer import build_trajectory
from trainingdash.http import HtmxHttpRequest

PANEL = "collection/_review_panel.html#panel"  # the section alone, for HTMX
STEP_MARK = "collection/_step_mark.html"
QUEUE = "collection/review_queue.html"


def _get_example(pk: int) -> TrainingExample:
    return get_object_or_404(
        TrainingExample.objects.select_related("execution__task", "reviewer"), pk=pk
    )


def review_initial(example: TrainingExample) -> dict[str, Any]:
    return {
        "is_golden": example.is_golden,
        "validated": example.validated,
        "validator_notes": example.validator_notes,
        "tags": ", ".join(example.tags),
        "quality_override": example.quality_override,
        "override_reason": example.quality_override_reason,
    }


def review_panel_context(
    example: TrainingExample,
    form: ReviewForm | None = None,
    *,
    via: str = "page",
    next_url: str = "",
) -> dict[str, Any]:
    """The context of `_review_panel.html` (plus `can_review`, from the context processor)."""
    next_url = next_url or example.get_absolute_url()
    panel_url = reverse("collection-example-review", args=[example.pk])
    return {
        "example": example,
        "form": form or ReviewForm(initial=review_initial(example)),
        "events": history(example),
        "via": via,
        "next_url": next_url,
        "panel_url": f"{panel_url}?{urlencode({'via': via, 'next': next_url})}",
    }


# --- the review form --------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@require_perm(REVIEW, methods=("POST",))
def example_review(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """GET: the review panel (HTMX reloads it after a change). POST: save the review form."""
    example = _get_example(pk)
    if request.method == "GET":
        next_url = _next_url(request, example, request.GET)
        return render(
            request, PANEL, review_panel_context(example, via=_via(request.GET), next_url=next_url)
        )
    via = _via(request.POST)
    form = ReviewForm(request.POST)
    if not form.is_valid():
        return _invalid_review(request, example, form, via)
    review_example(example, signed_in_user(request), **form.cleaned_data, via=via)
    if not request.htmx:
        return redirect(_next_url(request, example))
    return trigger_client_event(HttpResponse(status=204), "example-reviewed", {"id": example.pk})


def _via(params: Any) -> str:
    return "queue" if params.get("via") == "queue" else "page"


def _invalid_review(
    request: HtmxHttpRequest, example: TrainingExample, form: ReviewForm, via: str
) -> HttpResponse:
    """400 with the form and its errors: the panel for HTMX, the queue's page without JS."""
    context = review_panel_context(example, form, via=via, next_url=_next_url(request, example))
    if request.htmx:
        return render(request, PANEL, context, status=400)
    page = _queue_context(ExampleFilters(), {}, example) | context | _trajectory_context(example)
    return render(request, QUEUE, page, status=400)


def _next_url(request: HtmxHttpRequest, example: TrainingExample, params: Any | None = None) -> str:
    """Where to go after a change: the form's `next` if it is on this site, else the example."""
    wanted = (request.POST if params is None else params).get("next", "")
    safe = url_has_allowed_host_and_scheme(wanted, {request.get_host()}, request.is_secure())
    return wanted if wanted and safe else example.get_absolute_url()


# --- step marks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepRef:
    """What `_step_mark.html` needs of a step (the viewer's `Step` has the same two)."""

    message_id: int
    mark: StepMark | None = None


@require_POST
@require_perm(REVIEW)
def step_mark(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Mark a step bad (with an optional comment) or unmark it; answers with its fragment."""
    example = _get_example(pk)
    form = StepMarkForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest(error_text(form), content_type="text/plain")
    message = _assistant_step(example, form.cleaned_data["message"])
    if message is None:
        wrong = form.cleaned_data["message"]
        text = f"message: {wrong} is not an assistant step of example {example.pk}'s trajectory"
        return HttpResponseBadRequest(text, content_type="text/plain")
    mark = _apply_mark(request, example, message, form.cleaned_data)
    if not request.htmx:
        return redirect(f"{_next_url(request, example)}#step-{message.pk}")
    context = {"example": example, "step": StepRef(message.pk, mark), "via": _via(request.POST)}
    response = render(request, STEP_MARK, context)
    return trigger_client_event(response, "step-marked", {"id": example.pk, "step": message.pk})


def _assistant_step(example: TrainingExample, message_pk: int) -> Message | None:
    steps = Message.objects.filter(execution_id=example.execution_id, type="assistant")
    return steps.only("pk", "seq", "type", "execution_id").filter(pk=message_pk).first()


def _apply_mark(
    request: HtmxHttpRequest, example: TrainingExample, message: Message, data: dict[str, Any]
) -> StepMark | None:
    user, via = signed_in_user(request), _via(request.POST)
    if data["action"] == "unmark":
        unmark_step(example, message, user, via=via)
        return None
    return mark_step(example, message, user, data["comment"].strip(), via=via)


# --- the queue --------------------------------------------------------------------------------


@require_GET
def review_queue(request: HtmxHttpRequest) -> HttpResponse:
    """The next unreviewed example matching the list's filter (or `?example=`), to review."""
    params = {k: v for k, v in request.GET.dict().items() if k in ExampleFilters.model_fields}
    try:
        filters = ExampleFilters.from_query(params)
    except ValidationError as exc:
        return render(request, QUEUE, {"error": queries.describe(exc)}, status=400)
    chosen = request.GET.get("example", "")
    if chosen and not chosen.isdigit():
        error = f"example: {chosen!r} is not an example id"
        return render(request, QUEUE, {"error": error}, status=400)
    example = _get_example(int(chosen)) if chosen else _first_unreviewed(filters)
    context = _queue_context(filters, params, example)
    if example is not None:
        here = context["here"]
        context |= review_panel_context(example, via="queue", next_url=here)
        context |= _trajectory_context(example)
    template = (
        QUEUE + "#status" if request.htmx and request.htmx.target == "queue-status" else QUEUE
    )
    return render(request, template, context)


def _queue_context(
    filters: ExampleFilters, params: dict[str, str], example: TrainingExample | None
) -> dict[str, Any]:
    matches = filter_examples(filters)
    progress = _progress(filters, matches)
    context: dict[str, Any] = {"example": example, "filter_query": urlencode(params), **progress}
    if example is None:
        return context | {"here": _queue_url(params)}
    next_pk = _next_unreviewed(filters, matches, example.pk)
    previous_pk = _previous(filters, matches, example.pk)
    return context | {
        "here": _queue_url(params, example.pk),
        "next_example_url": _queue_url(params, next_pk) if next_pk else "",
        "previous_example_url": _queue_url(params, previous_pk) if previous_pk else "",
    }


def _queue_url(params: dict[str, str], pk: int | None = None) -> str:
    query = params | ({"example": str(pk)} if pk else {})
    return reverse("collection-review-queue") + (f"?{urlencode(query)}" if query else "")


def _progress(filters: ExampleFilters, matches: QuerySet[TrainingExample]) -> dict[str, Any]:
    """How many of the queue's examples are reviewed, of how many. Unfiltered on a big table,
    the total is the database's estimate (`queries.estimated_total`) and the reviewed ones are
    counted from their own (partial) index, rather than reading every example."""
    total = None if filters.narrows() else queries.estimated_total()
    if total is not None:
        reviewed = TrainingExample.objects.filter(reviewed_at__isnull=False).count()
        return {"total": max(total, reviewed), "reviewed": reviewed, "estimated": True}
    counts = matches.order_by().aggregate(
        total=Count("pk"), reviewed=Count("pk", filter=Q(reviewed_at__isnull=False))
    )
    return {"total": counts["total"], "reviewed": counts["reviewed"], "estimated": False}


def _first_unreviewed(filters: ExampleFilters) -> TrainingExample | None:
    pk = _first_pk(filter_examples(filters).filter(reviewed_at__isnull=True))
    return _get_example(pk) if pk else None


def _next_unreviewed(
    filters: ExampleFilters, matches: QuerySet[TrainingExample], pk: int
) -> int | None:
    """The first unreviewed example after `pk` in the list's order; past the end, the first
    unreviewed one from the start (one skipped earlier)."""
    unreviewed = matches.filter(reviewed_at__isnull=True).exclude(pk=pk)
    return _first_pk(queries.beyond(filters, unreviewed, pk)) or _first_pk(unreviewed)


def _previous(filters: ExampleFilters, matches: QuerySet[TrainingExample], pk: int) -> int | None:
    """The example just before `pk` in the list's order, reviewed or not."""
    return _first_pk(queries.beyond(filters, matches, pk, backwards=True))


def _first_pk(rows: QuerySet[TrainingExample]) -> int | None:
    return rows.values_list("pk", flat=True).first()


def _trajectory_context(example: TrainingExample) -> dict[str, Any]:
    return {"trajectory": build_trajectory(example.execution, example=example)}
