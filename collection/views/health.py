"""The one public page: a liveness check for the load balancer."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from trainingdash.http import HtmxHttpRequest


@login_not_required
@require_GET
def healthz(request: HtmxHttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})
