"""Reading a trajectory: an example's page (with the review panel), an execution's page (any
execution: running, failed, without an example), and the two things they load on demand: a
tool call's whole output and a message's raw JSON."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from collection.models import Execution, Message, ToolCall, TrainingExample
from collection.roles import require_perm
from collection.viewer import build_trajectory
from collection.viewer.cards import card_for
from collection.views.review import review_panel_context
from trainingdash.http import HtmxHttpRequest

# Reading trajectories is what every role may do; a user without a role may not.
VIEW = "collection.view_execution"
# Whole outputs are loaded on request, but a browser still has to lay them out.
MAX_OUTPUT_CHARS = 2_000_000


def _get_example(pk: int) -> TrainingExample:
    return get_object_or_404(
        TrainingExample.objects.select_related("execution__task", "reviewer"), pk=pk
    )


def _get_execution(pk: int) -> Execution:
    return get_object_or_404(Execution.objects.select_related("task"), pk=pk)


@require_GET
@require_perm(VIEW)
def example_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    example = _get_example(pk)
    context = {
        "execution": example.execution,
        "trajectory": build_trajectory(example.execution, example=example),
        # example, form, events and what the review panel needs to reload itself
        **review_panel_context(example),
    }
    return render(request, "collection/example_detail.html", context)


@require_GET
@require_perm(VIEW)
def execution_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    execution = _get_execution(pk)
    context = {
        "execution": execution,
        "example": None,  # step marks belong to the example's page
        "example_id": TrainingExample.objects.filter(execution=execution)
        .values_list("pk", flat=True)
        .first(),
        "trajectory": build_trajectory(execution),
        "view": "trajectory",
    }
    return render(request, "collection/execution_detail.html", context)


@require_GET
@require_perm(VIEW)
def tool_output(request: HtmxHttpRequest, pk: int, call_pk: int) -> HttpResponse:
    """A tool call's whole output (or, with ?part=input, its whole diff or file)."""
    calls = ToolCall.objects.select_related("execution__task")
    call = get_object_or_404(calls, pk=call_pk, execution_id=pk)
    part = "input" if request.GET.get("part") == "input" else "output"
    card = card_for(call.tool_use_id, call.name, _as_dict(call.input), call, full=True)
    text = card.output.text if card.output else ""
    context = {
        "execution": call.execution,
        "call": call,
        "card": card,
        "part": part,
        "text": text[:MAX_OUTPUT_CHARS],
        "cut": len(text) > MAX_OUTPUT_CHARS,
        "view": "tool-output",
    }
    return _page_or_partial(request, "tool-output", context)


@require_GET
@require_perm(VIEW)
def message_raw(request: HtmxHttpRequest, pk: int, message_pk: int) -> HttpResponse:
    """One stored message as pretty-printed JSON."""
    message = get_object_or_404(
        Message.objects.select_related("execution__task"), pk=message_pk, execution_id=pk
    )
    context = {
        "execution": message.execution,
        "message": message,
        "raw": json.dumps(message.payload, indent=2, ensure_ascii=False, sort_keys=True),
        "view": "raw",
    }
    return _page_or_partial(request, "raw", context)


def _page_or_partial(request: HtmxHttpRequest, partial: str, context: dict) -> HttpResponse:
    template = "collection/execution_detail.html"
    if request.htmx and not request.htmx.boosted:
        template += f"#{partial}"
    return render(request, template, context)


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
