"""Stub: being built (issue 10)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse

from collection.views.examples import example_review  # moving here

__all__ = ["example_review"]


def step_mark(request: HttpRequest, *args: object, **kw: object) -> HttpResponse:
    raise Http404("not built yet")


def review_queue(request: HttpRequest, *args: object, **kw: object) -> HttpResponse:
    raise Http404("not built yet")
