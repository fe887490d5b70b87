"""The one public page: the health of each service trainingdash needs, for a load balancer or
a person. 200 only when the database, the job queue and at least one worker are all up."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from trainingdash import broker
from trainingdash.http import HtmxHttpRequest


@login_not_required
@require_GET
def healthz(request: HtmxHttpRequest) -> JsonResponse:
    checks = {"database": _database(), "broker": {"status": "error"}, "workers": {}}
    try:
        redis_broker = broker.check_broker()
    except broker.BrokerUnavailable as exc:
        # Public page: the kind of failure, not addresses (the log has those).
        checks["broker"] = _error("unreachable", exc)
        checks["workers"] = {"status": "error", "error": "unknown: the job queue is unreachable"}
    else:
        checks["broker"] = {"status": "ok"}
        checks["workers"] = _workers(redis_broker)
    healthy = all(check["status"] == "ok" for check in checks.values())
    body = {"status": "ok" if healthy else "error", **checks}
    return JsonResponse(body, status=200 if healthy else 503)


def _database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return _error("unreachable", exc)
    return {"status": "ok"}


def _workers(redis_broker: broker.RedisBroker) -> dict[str, Any]:
    try:
        live = broker.live_workers(redis_broker)
    except broker.BROKER_DOWN as exc:
        return _error("unknown", exc)
    if not live:
        window = 3 * settings.WORKER_HEARTBEAT_SECONDS
        return {"status": "error", "live": 0, "error": f"no worker reported in the last {window} s"}
    return {"status": "ok", "live": live}


def _error(what: str, exc: BaseException) -> dict[str, Any]:
    cause = exc.__cause__ or exc
    return {"status": "error", "error": f"{what} ({type(cause).__name__})"}
