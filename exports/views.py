from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render

from trainingdash.http import HtmxHttpRequest


def index(request: HtmxHttpRequest) -> HttpResponse:
    return render(request, "exports/index.html")
