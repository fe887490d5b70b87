from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_htmx.http import HttpResponseStopPolling
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    """The request type every view takes: HtmxMiddleware adds `.htmx`."""

    htmx: HtmxDetails


def render_progress(
    request: HtmxHttpRequest, template: str, context: dict[str, Any], *, done: bool
) -> HttpResponse:
    """A job page: the whole page, or for htmx's poll its `#progress` partial — answered with
    286 once the job is done, which tells htmx to stop polling (the finished fragment also has
    no trigger left)."""
    if not request.htmx:
        return render(request, template, context)
    response = render(request, f"{template}#progress", context)
    return HttpResponseStopPolling(response.content) if done else response
