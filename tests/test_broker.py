from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from django.conf import settings
from django.db import connection
from dramatiq import Worker

from collection.jobs.actors import rescore_examples
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


WORKER = [
    sys.executable,
    "-m",
    "dramatiq",
    "trainingdash.worker",
    "--processes",
    "1",
    "--threads",
    "2",
]


def start_worker(**env: str) -> subprocess.Popen:
    require("Redis", bool(settings.REDIS_URL), "set REDIS_URL")
    return subprocess.Popen(
        WORKER,
        cwd=ROOT,
        env=worker_env() | env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: killable with its CLI children
    )


def stop_worker(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        return proc.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.communicate()[0]


def start_slow_fix(tmp_path: Path, **env: str) -> tuple[subprocess.Popen, Any]:
    """A worker (`env` its settings), and a SLOW_FIX job of it that is in its Bash step (its CLI
    running `sleep`): where the fault tests signal or kill it."""
    return start_fix(tmp_path, env)


def start_fix(
    tmp_path: Path, env: dict[str, str], *, timeout_s: float = 600, script: Any = None
) -> tuple[subprocess.Popen, Any]:
    """`start_slow_fix`, with the job's time limit and script (SLOW_FIX by default) given."""
    from collection.jobs.runner import create_job
    from collection.models import Execution
    from tests.factories import make_task
    from tests.sessions import SLOW_FIX, fix_spec, make_workspace

    worker = start_worker(**env)
    spec = fix_spec(make_workspace(tmp_path / "ws"), script=script or SLOW_FIX, timeout_s=timeout_s)
    job = create_job(make_task(), spec)
    mid_session = wait_for(
        lambda: Execution.objects.filter(job__pk=job.pk, tool_calls__name="Bash").exists(), 60
    )
    if not mid_session:
        pytest.fail(f"the job never reached its Bash step:\n{stop_worker(worker)}")
    return worker, job


@pytest.fixture
def live_worker(transactional_db) -> Iterator[subprocess.Popen]:
    proc = start_worker()
    yield proc
    stop_worker(proc)


def wait_for(condition, timeout: float = 30.0) -> bool:
    """Poll until `condition()` holds, at most `timeout` seconds. Only for waiting on a real
    worker process (or CLI) writing to the database: nothing in this process can signal it."""
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
    previous = broker_module._embedded, broker_module._embedded_users
    broker_module._embedded = broker_module._embedded_users = None
    broker = broker_module.make_broker()
    yield broker
    broker.close()
    broker_module.stop_embedded_redis()
    broker_module._embedded, broker_module._embedded_users = previous


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


FAST_FAILOVER = {
    "COLLECTION_LEASE_SECONDS": "4",
    "DRAMATIQ_HEARTBEAT_TIMEOUT_MS": "3000",
    "DRAMATIQ_MAINTENANCE_CHANCE": "1000000",  # per million commands: always
}


def test_a_job_whose_worker_is_killed_completes_exactly_once_on_redelivery(
    transactional_db, tmp_path
):
    from collection.models import CollectionJob, Execution, JobStatus

    first, job = start_slow_fix(tmp_path, **FAST_FAILOVER)
    os.killpg(first.pid, signal.SIGKILL)  # the worker, its children and the CLI
    first.communicate()
    assert CollectionJob.objects.get(pk=job.pk).status == JobStatus.RUNNING

    second = start_worker(**FAST_FAILOVER)
    try:
        done = wait_for(lambda: CollectionJob.objects.get(pk=job.pk).is_finished, timeout=120)
    finally:
        output = stop_worker(second)
    assert done, output
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.attempts == 2
    assert Execution.objects.count() == 1
    execution = Execution.objects.get()
    assert execution.success and execution.training_example.is_golden
    assert execution.metadata["interrupted_attempts"] == 1
    assert execution.messages.filter(type="result").count() == 1
