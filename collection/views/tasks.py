"""Stub: being built (issue 10)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse


def task_list(request: HttpRequest, *args: object, **kw: object) -> HttpResponse:
    raise Http404("not built yet")


def task_create(request: HttpRequest, *args: object, **kw: object) -> HttpResponse:
    raise Http404("not built yet")


def task_detail(request: HttpRequest, *args: object, **kw: object) -> HttpResponse:
    raise Http404("not built yet")


def task_edit(request: HttpRequest, *args: object, **kw: object) -> HttpResponse:
    raise Http404("not built yet")


def task_collect(request: HttpRequest, *args: object, **kw: object) -> HttpResponse:
    raise Http404("not built yet")
