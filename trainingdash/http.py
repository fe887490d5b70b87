from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views import defaults
from django_htmx.http import HttpResponseStopPolling
from django_htmx.middleware import HtmxDetails

from trainingdash.broker import BROKER_DOWN

log = logging.getLogger(__name__)


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


# --- outages: a service down is a 503 naming it, not a bare "Server Error (500)" ---------------


def down_service(exc: BaseException) -> str | None:
    """Which service an exception says could not be used ("database", "job queue"), or None."""
    if isinstance(exc, OperationalError | InterfaceError):
        return "database"
    if isinstance(exc, BROKER_DOWN):
        return "job queue"
    return None


def outage_response(service: str) -> HttpResponse:
    # Rendered without the request: context processors would ask the database for the user.
    page = render_to_string("503.html", {"service": service})
    return HttpResponse(page, status=503, headers={"Retry-After": "30"})


class OutageMiddleware:
    """A view that fails because the database or the job queue is down answers 503 with a page
    saying which (the error goes to the log)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        service = down_service(exception)
        if service is None:
            return None
        log.error(
            "%s %s: the %s is unavailable: %s", request.method, request.path, service, exception
        )
        return outage_response(service)


def server_error(request: HttpRequest, template_name: str = "500.html") -> HttpResponse:
    """handler500: an outage found outside a view (a middleware reading the session from a
    database that is down) also gets the page naming it; anything else Django's 500 page."""
    exc = sys.exc_info()[1]
    service = down_service(exc) if exc is not None else None
    if service is not None:
        return outage_response(service)
    return defaults.server_error(request, template_name)
