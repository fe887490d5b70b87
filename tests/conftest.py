from __future__ import annotations

from collections.abc import Iterator

import dramatiq
import pytest
from django.contrib.auth.models import User
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Retries

from collection.roles import ADMIN, REVIEWER, VIEWER, assign_role, sync_roles


def _user(username: str, role: str) -> User:
    user = User.objects.create_user(username, f"{username}@example.com", "password")
    assign_role(user, role)
    return user


@pytest.fixture
def roles(db) -> None:
    # Groups are made after migrate; transactional tests flush them, so make sure they exist.
    sync_roles()


@pytest.fixture
def admin_user(roles) -> User:
    return _user("alice", ADMIN)


@pytest.fixture
def reviewer(roles) -> User:
    return _user("bob", REVIEWER)


@pytest.fixture
def viewer(roles) -> User:
    return _user("charlie", VIEWER)


@pytest.fixture
def stub_broker() -> Iterator[StubBroker]:
    """A StubBroker with our middleware and every actor declared, installed as the broker.

    Retries back off by milliseconds instead of seconds; what is retried is decided as in
    production (`trainingdash.broker._retry_when_retryable`). The previous broker comes back
    afterwards.
    """
    from trainingdash.broker import _retry_when_retryable, broker_middleware, load_actors

    load_actors()  # declares every app's actors on the current broker

    fast_retries = Retries(retry_when=_retry_when_retryable, min_backoff=10, max_backoff=20)
    middleware = [fast_retries if isinstance(m, Retries) else m for m in broker_middleware()]
    current = dramatiq.get_broker()
    stub = StubBroker(middleware=middleware)
    for name in current.get_declared_actors():
        stub.declare_actor(current.get_actor(name))
    dramatiq.set_broker(stub)
    yield stub
    stub.close()
    dramatiq.set_broker(current)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `postgres` race writers against each other, which SQLite serialises: on
    SQLite they are deselected (the test command runs them in its PostgreSQL pass), not skipped."""
    from django.db import connection

    if connection.vendor == "postgresql":
        return
    dropped = [item for item in items if item.get_closest_marker("postgres")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]
