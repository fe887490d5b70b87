"""Stub: being built (issue 10)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse

from collection.views.examples import example_detail  # moving here

__all__ = ["example_detail"]


def execution_detail(request: HttpRequest, *args: object, **kw: object) -> HttpResponse:
    raise Http404("not built yet")


def tool_output(request: HttpRequest, *args: object, **kw: object) -> HttpResponse:
    raise Http404("not built yet")


def message_raw(request: HttpRequest, *args: object, **kw: object) -> HttpResponse:
    raise Http404("not built yet")
