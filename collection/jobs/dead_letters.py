"""Dead-lettered messages: the queue messages Dramatiq gave up on, for the jobs page.

    install(broker)          # in each worker: a dead letter keeps the error that killed it
    found = read(limit=20)   # DeadLetters(count=2, recent=[DeadLetter(...), ...], problem="")

A message no job can take (an id that is not a number, no argument at all) or whose actor
raised an error that is not retryable is moved by Dramatiq to its queue's dead-letter set in
Redis (`<namespace>:<queue>.XQ`, the message itself in `<queue>.XQ.msgs`) and kept for its
dead-message TTL (a week). Dramatiq's Redis broker stores the message as it was sent, without
the traceback its Retries middleware adds; `ErrorKept` writes the failed message back over it,
so the dead letter says why it died. A job that could run and failed is a failed job, not a
dead letter: this lists only what no job row shows.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker

from trainingdash import broker as broker_module

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeadLetter:
    queue: str
    actor: str
    args: str
    error: str  # the exception's last line ("ValueError: ..."), "" when not recorded
    at: datetime  # when it was dead-lettered
    message_id: str


@dataclass
class DeadLetters:
    count: int = 0
    recent: list[DeadLetter] = field(default_factory=list)
    problem: str = ""  # why they could not be read (Redis down), "" when read


class ErrorKept(dramatiq.Middleware):
    """Keeps the traceback of a dead-lettered message in its dead-letter entry."""

    def after_nack(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if not isinstance(broker, RedisBroker):
            return
        key = f"{broker.namespace}:{_canonical(message.queue_name)}.XQ.msgs"
        entry = message.options.get("redis_message_id", message.message_id)
        try:
            # Only over the entry the nack made: one removed meanwhile (its TTL) stays removed.
            if broker.client.hexists(key, entry):
                broker.client.hset(key, entry, message.encode())
        except broker_module.BROKER_DOWN:
            log.warning("dead letter %s: its error was not kept", message.message_id)


def install(broker: dramatiq.Broker) -> None:
    """Keep dead letters' errors in the workers of `broker` (once, however often called)."""
    if not any(isinstance(m, ErrorKept) for m in broker.middleware):
        broker.add_middleware(ErrorKept())


def read(limit: int = 20) -> DeadLetters:
    """How many messages are dead-lettered, across queues, and the `limit` newest."""
    try:
        if dramatiq.broker.global_broker is None:
            broker_module.setup_broker()
        broker = dramatiq.get_broker()
        if not isinstance(broker, RedisBroker):
            return DeadLetters()  # a test's StubBroker keeps no dead letters
        return _read(broker, limit)
    except broker_module.BROKER_DOWN as exc:
        return DeadLetters(problem=f"{broker_module.describe_broker()} is unreachable: {exc}")


def _read(broker: RedisBroker, limit: int) -> DeadLetters:
    client, ns = broker.client, broker.namespace
    found = DeadLetters()
    newest: list[tuple[float, str, bytes]] = []
    for key in client.scan_iter(match=f"{ns}:*.XQ"):
        queue = key.decode().removeprefix(f"{ns}:").removesuffix(".XQ")
        found.count += int(client.zcard(key))
        entries: Any = client.zrevrange(key, 0, limit - 1, withscores=True)
        newest += [(score, queue, message_id) for message_id, score in entries]
    newest.sort(reverse=True)
    for score, queue, message_id in newest[:limit]:
        data: Any = client.hget(f"{ns}:{queue}.XQ.msgs", message_id)
        found.recent.append(_letter(queue, message_id.decode(), score, data))
    return found


def _letter(queue: str, message_id: str, score: float, data: bytes | None) -> DeadLetter:
    message = json.loads(data) if data else {}
    options = message.get("options") or {}
    trace = str(options.get("traceback") or "").strip()
    return DeadLetter(
        queue=queue,
        actor=str(message.get("actor_name", "?")),
        args=json.dumps(message.get("args", []))[:200],
        error=trace.splitlines()[-1][:500] if trace else "",
        at=datetime.fromtimestamp(score / 1000, tz=UTC),
        message_id=message_id,
    )


def _canonical(queue_name: str) -> str:
    # A delayed message's queue is "<queue>.DQ"; its dead letters are the queue's.
    return queue_name.removesuffix(".DQ")
