"""The health check: public, JSON, read-only; the database, the job queue and live workers
each reported, 200 only when all are up."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator

import dramatiq
import pytest
from django.db import connection

from tests.test_broker import start_worker
from trainingdash import broker as broker_module
from trainingdash.broker import InProcessWorkers

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    """A port on loopback nothing listens on: connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def broker_down(settings) -> Iterator[None]:
    """This process's broker pointed at a Redis that is not there."""
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    ours, installed = broker_module._broker, dramatiq.broker.global_broker
    broker_module._broker = None
    broker_module.setup_broker()  # installed, as in a process whose Redis went away
    yield
    if broker_module._broker is not None:
        broker_module._broker.close()
    broker_module._broker = ours
    dramatiq.set_broker(installed)


def wait_for_health(client, status: int, timeout: float = 15.0):
    """Poll /healthz until it answers `status`: a worker thread reports on its own clock."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get("/healthz")
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def test_without_a_worker_the_check_fails_and_says_so(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    report = response.json()
    assert report["status"] == "error"
    assert report["database"] == {"status": "ok"}
    assert report["broker"] == {"status": "ok"}
    assert report["workers"]["status"] == "error"
    assert report["workers"]["live"] == 0


def test_with_a_live_worker_everything_is_ok_until_it_stops(client):
    with InProcessWorkers(1):
        response = wait_for_health(client, 200)
        assert response.status_code == 200, response.json()
        assert response.json() == {
            "status": "ok",
            "database": {"status": "ok"},
            "broker": {"status": "ok"},
            "workers": {"status": "ok", "live": 1},
        }
    # A worker that stops cleanly takes itself off at once.
    assert client.get("/healthz").json()["workers"]["live"] == 0


@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_process_is_dropped_after_three_missed_heartbeats(client, settings):
    settings.WORKER_HEARTBEAT_SECONDS = 1
    worker = start_worker(TRAININGDASH_WORKER_HEARTBEAT_SECONDS="1")
    try:
        up = wait_for_health(client, 200, timeout=60)
        assert up.status_code == 200, up.json()
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # no shutdown hook runs
        worker.communicate()
    killed = time.monotonic()
    response = wait_for_health(client, 503, timeout=10)
    assert response.json()["workers"] == {
        "status": "error",
        "live": 0,
        "error": "no worker reported in the last 3 s",
    }
    assert 1 < time.monotonic() - killed < 6


def test_an_unreachable_broker_is_reported_without_its_address(client, broker_down, settings):
    response = client.get("/healthz")
    assert response.status_code == 503
    report = response.json()
    assert report["database"] == {"status": "ok"}
    assert report["broker"] == {"status": "error", "error": "unreachable (ConnectionError)"}
    assert report["workers"]["status"] == "error"
    assert settings.REDIS_URL.rsplit(":", 1)[1] not in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_database_is_reported(client, tmp_path):
    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = str(tmp_path / "no-such-folder" / "db.sqlite3")
    else:
        connection.settings_dict["PORT"] = str(closed_port())
        connection.settings_dict["HOST"] = "127.0.0.1"
    try:
        response = client.get("/healthz")
    finally:
        connection.close()
        connection.settings_dict.update(saved)
    assert response.status_code == 503
    report = response.json()
    assert report["status"] == "error"
    assert report["database"] == {"status": "error", "error": "unreachable (OperationalError)"}
    assert report["broker"] == {"status": "ok"}


def test_the_health_check_only_answers_get(client):
    assert client.post("/healthz").status_code == 405
