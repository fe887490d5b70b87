from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
from django.conf import settings
from django.db import connection
from dramatiq import Worker

from collection.actors import rescore_examples
from collection.models import TrainingExample
from tests.factories import make_example, make_execution
from tests.services import require
from trainingdash import broker as broker_module

ROOT = Path(__file__).resolve().parent.parent


def worker_env() -> dict[str, str]:
    """Environment for a worker subprocess that shares this test's database and queues."""
    return os.environ | {
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "TRAININGDASH_TEST_DB_NAME": str(connection.settings_dict["NAME"]),
        "DRAMATIQ_NAMESPACE": settings.DRAMATIQ_NAMESPACE,
        "REDIS_URL": settings.REDIS_URL,
        "TRAININGDASH_DATA_DIR": str(settings.DATA_DIR),
    }


@pytest.fixture
def live_worker(transactional_db) -> Iterator[subprocess.Popen]:
    require("Redis", bool(settings.REDIS_URL), "set REDIS_URL")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dramatiq",
            "trainingdash.worker",
            "--processes",
            "1",
            "--threads",
            "2",
        ],
        cwd=ROOT,
        env=worker_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield proc
    proc.terminate()
    proc.wait(timeout=30)


def wait_for(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_an_actor_runs_in_a_real_worker_through_redis(live_worker, settings):
    assert settings.REDIS_URL.startswith("redis://")
    examples = [make_example(make_execution(success=True), quality_score=0.0) for _ in range(3)]
    rescore_examples.send([e.pk for e in examples], "tests.test_scoring.seed_custom_scorer")
    scored = wait_for(
        lambda: TrainingExample.objects.filter(quality_score=1.0, is_golden=True).count() == 3
    )
    if not scored:
        live_worker.terminate()
        pytest.fail("the worker did not rescore the examples:\n" + live_worker.communicate()[0])


@pytest.fixture
def embedded_broker(tmp_path, settings) -> Iterator[dramatiq.Broker]:
    settings.REDIS_URL = ""
    settings.REDIS_EMBEDDED_DB = tmp_path / "redis" / "embedded.rdb"
    previous = broker_module._embedded
    broker_module._embedded = None
    broker = broker_module.make_broker()
    yield broker
    broker.close()
    broker_module._embedded.shutdown()
    broker_module._embedded = previous


def test_without_redis_url_the_same_broker_runs_on_embedded_redis(embedded_broker, tmp_path):
    connection_kwargs = embedded_broker.client.connection_pool.connection_kwargs
    assert connection_kwargs["path"].endswith("redis.socket")
    seen: list[int] = []

    @dramatiq.actor(broker=embedded_broker, queue_name="embedded-test")
    def remember(n: int) -> None:
        seen.append(n)

    worker = Worker(embedded_broker, worker_threads=1)
    worker.start()
    try:
        for n in range(3):
            remember.send(n)
        embedded_broker.join("embedded-test", timeout=20_000)
        worker.join()
    finally:
        worker.stop()
    assert sorted(seen) == [0, 1, 2]
    assert (tmp_path / "redis").is_dir()
