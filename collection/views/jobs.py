"""Stub: being built (issue 10)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse


def job_list(request: HttpRequest, *args: object, **kw: object) -> HttpResponse:
    raise Http404("not built yet")


def job_detail(request: HttpRequest, *args: object, **kw: object) -> HttpResponse:
    raise Http404("not built yet")


def job_action(request: HttpRequest, *args: object, **kw: object) -> HttpResponse:
    raise Http404("not built yet")
