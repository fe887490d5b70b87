"""The reconciler, and jobs that nothing else would move: real Redis, real worker processes.

Workers run `python -m dramatiq trainingdash.worker` (tests/test_broker.py) with Dramatiq's own
redelivery of a dead worker's messages turned off (maintenance chance 0), so that what moves a
killed worker's job is the reconciler and nothing else.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from collection.jobs import reconciler
from collection.jobs.batches import GenerationParams, dispatch, plan, resume_batch
from collection.jobs.collections import cancel_collection
from collection.jobs.runner import create_job, sandboxes_dir
from collection.models import (
    SENT_AT,
    CollectionJob,
    Execution,
    GenerationBatch,
    JobStatus,
    TaskStatus,
)
from collection.sessions.spec import JobSpec
from collection.task_templates import TaskTemplateLibrary
from tests.factories import make_execution, make_message, make_task
from tests.services import port_open, require
from tests.sessions import fix_spec, make_workspace
from tests.test_broker import start_slow_fix, start_worker, stop_worker, wait_for
from trainingdash import broker as broker_module

pytestmark = pytest.mark.django_db(transaction=True)

# A worker whose killed jobs only the reconciler can move: Dramatiq never redelivers.
RECONCILING = {
    "COLLECTION_LEASE_SECONDS": "4",
    "TRAININGDASH_RECONCILE_SECONDS": "1",
    "DRAMATIQ_MAINTENANCE_CHANCE": "0",
}


@pytest.fixture
def redis_broker(settings) -> Iterator[dramatiq.Broker]:
    """This process's real RedisBroker (the test namespace), with every actor declared."""
    require("Redis", bool(settings.REDIS_URL), "set REDIS_URL")
    broker = broker_module.setup_broker()
    broker_module.load_actors()
    previous = dramatiq.get_broker()
    dramatiq.set_broker(broker)
    broker.flush_all()
    yield broker
    broker.flush_all()
    dramatiq.set_broker(previous)


def dead_letters(broker: Any, queue: str = "collection") -> int:
    return int(broker.client.zcard(f"{broker.namespace}:{queue}.XQ"))


def make_batch(concurrency: int = 2, planned: int = 3) -> GenerationBatch:
    """A running batch of `planned` debugging sessions; its jobs are made by the test, named
    by `planned_keys`."""
    params = GenerationParams(
        seed=1, concurrency=concurrency, categories=["debugging"], examples_per_category=planned
    )
    batch = GenerationBatch.objects.create(name="probe", params=params.model_dump(mode="json"))
    batch.acquire()
    return batch


def planned_keys(batch: GenerationBatch) -> list[str]:
    params = GenerationParams.model_validate(batch.params)
    return [item.plan_key for item in plan(params, TaskTemplateLibrary.load())]


def add_job(batch: GenerationBatch, key: str, spec: dict[str, Any]) -> CollectionJob:
    return CollectionJob.objects.create(task=make_task(), spec=spec, batch=batch, plan_key=key)


# --- jobs that cannot start -------------------------------------------------------------------


def test_jobs_that_cannot_start_fail_with_their_reason_and_their_batch_finishes(
    redis_broker, tmp_path, admin_user, client
):
    gone = make_workspace(tmp_path / "deleted-after-queueing")
    good = fix_spec(make_workspace(tmp_path / "ws")).model_dump(mode="json")
    batch = make_batch(concurrency=3)
    unknown_policy = add_job(batch, "policy", good | {"policy": "no-such-policy"})
    bad_options = add_job(batch, "options", good | {"max_turns": "many"})
    deleted = add_job(batch, "workspace", good | {"workspace": str(gone)})
    assert dispatch(batch) == 3
    shutil.rmtree(gone)
    worker = start_worker(**RECONCILING)
    try:
        done = wait_for(lambda: GenerationBatch.objects.get(pk=batch.pk).is_finished, 90)
    finally:
        output = stop_worker(worker)
    assert done, output

    errors = {
        unknown_policy.pk: "unknown scripted policy 'no-such-policy'",
        bad_options.pk: "ValidationError",
        deleted.pk: f"FileNotFoundError: [Errno 2] No such file or directory: '{gone}'",
    }
    for pk, error in errors.items():
        job = CollectionJob.objects.get(pk=pk)
        assert job.status == JobStatus.FAILED and error in job.error
        assert job.lease_expires_at is None and job.attempts == 1
    # Nothing was opened (or it was closed): no execution left pending, no example made.
    assert not Execution.objects.filter(status__in=[TaskStatus.PENDING, TaskStatus.IN_PROGRESS])
    assert dead_letters(redis_broker) == 0  # failed jobs, not dead-lettered messages
    batch.refresh_from_db()
    assert batch.status == JobStatus.FAILED
    assert batch.error.startswith("3 of 3 sessions failed to run: ")

    client.force_login(admin_user)
    job_page = client.get(reverse("collection-job-detail", args=[unknown_policy.pk]))
    assert "unknown scripted policy" in job_page.content.decode()
    batch_page = client.get(reverse("collection-batch-detail", args=[batch.pk])).content.decode()
    assert "unknown scripted policy" in batch_page and "FileNotFoundError" in batch_page


def test_a_job_taken_over_that_cannot_start_closes_the_execution_its_dead_worker_left(
    tmp_path, django_capture_on_commit_callbacks, settings
):
    from collection.jobs.runner import run_job

    settings.COLLECTION_LEASE_SECONDS = 30
    with django_capture_on_commit_callbacks(execute=False):
        job = create_job(make_task(), fix_spec(tmp_path / "no-such-workspace"))
    execution = make_execution(job.task, status=TaskStatus.IN_PROGRESS, success=None)
    make_message(execution, {"type": "system", "subtype": "init", "uuid": "u-1"})
    job.acquire("dead-worker")
    CollectionJob.objects.filter(pk=job.pk).update(
        execution=execution, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    job = run_job(job.pk)
    assert job is not None and job.status == JobStatus.FAILED and job.attempts == 2
    execution.refresh_from_db()
    assert execution.status == TaskStatus.FAILED and execution.is_partial
    assert execution.error.startswith("FileNotFoundError")
    assert execution.training_example  # a session began: what it did is data


# --- cancel, resume, the admin's requeue ------------------------------------------------------


def lapsed_running_job(task_status: str = TaskStatus.IN_PROGRESS) -> CollectionJob:
    """A running job whose worker died mid-session (one message stored), its lease lapsed."""
    job = CollectionJob.objects.create(task=make_task(), spec={"prompt": "x"})
    execution = make_execution(job.task, status=task_status, success=None)
    make_message(execution, {"type": "system", "subtype": "init", "uuid": "u-1"})
    job.acquire("dead-worker")
    CollectionJob.objects.filter(pk=job.pk).update(
        execution=execution, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    return CollectionJob.objects.select_related("execution").get(pk=job.pk)


def test_cancelling_a_job_whose_worker_died_cancels_it_and_its_execution_now():
    job = cancel_collection(lapsed_running_job())
    assert (job.status, job.error) == (JobStatus.CANCELLED, "cancelled by a user")
    execution = Execution.objects.get(pk=job.execution_id)
    assert execution.status == TaskStatus.CANCELLED and execution.is_partial


def test_cancelling_a_running_job_with_a_live_worker_only_asks_it_to_stop():
    job = lapsed_running_job()
    CollectionJob.objects.filter(pk=job.pk).update(
        lease_expires_at=timezone.now() + timedelta(minutes=1)
    )
    job.refresh_from_db()
    job = cancel_collection(job)
    assert (job.status, job.cancel_requested) == (JobStatus.RUNNING, True)


def test_resuming_a_batch_runs_its_failed_and_cancelled_jobs_again(redis_broker):
    batch = make_batch(concurrency=5)
    keys = planned_keys(batch)
    failed, cancelled, succeeded = (add_job(batch, key, {"prompt": "x"}) for key in keys)
    for job in (failed, cancelled, succeeded):
        job.acquire("w")
    failed.fail("FileNotFoundError: the workspace")
    cancelled.cancel("batch cancelled")
    succeeded.finish()
    GenerationBatch.objects.filter(pk=batch.pk).update(
        status=JobStatus.FAILED, finished_at=timezone.now()
    )
    batch.refresh_from_db()

    resume_batch(batch)
    statuses = list(batch.jobs.order_by("pk").values_list("status", flat=True))
    assert statuses == ["queued", "queued", "succeeded"]
    held = reconciler.held_job_ids(CollectionJob.queue_name, CollectionJob.actor_name)
    assert held == {failed.pk, cancelled.pk}
    assert batch.status == JobStatus.RUNNING


def test_the_admin_requeue_queues_a_running_job_whose_lease_lapsed(
    redis_broker, admin_user, client
):
    lapsed = lapsed_running_job()
    live = lapsed_running_job()
    CollectionJob.objects.filter(pk=live.pk).update(
        lease_expires_at=timezone.now() + timedelta(minutes=1)
    )
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:collection_collectionjob_changelist"),
        {"action": "requeue", "_selected_action": [lapsed.pk, live.pk]},
        follow=True,
    )
    assert "Queued 1 jobs again. 1 running under a live lease were left alone." in (
        response.content.decode()
    )
    assert CollectionJob.objects.get(pk=lapsed.pk).status == JobStatus.QUEUED
    assert CollectionJob.objects.get(pk=live.pk).status == JobStatus.RUNNING
    held = reconciler.held_job_ids(CollectionJob.queue_name, CollectionJob.actor_name)
    assert held == {lapsed.pk}


# --- one pass -----------------------------------------------------------------------------------


def test_a_pass_sends_again_only_the_queued_jobs_whose_message_is_lost(redis_broker, settings):
    settings.TRAININGDASH_RECONCILE_SECONDS = 10
    kept = create_job(make_task(), JobSpec(prompt="kept"))
    lost = create_job(make_task(), JobSpec(prompt="lost"))
    # A batch job waiting for its turn (its batch's one slot is taken) is not lost.
    batch = make_batch(concurrency=1)
    add_job(batch, "running", {"prompt": "x"}).acquire("a-live-worker")
    unsent = add_job(batch, "waiting-for-its-turn", {"prompt": "x"})
    # What a Redis restarted without its data has of the second message: nothing.
    redis_broker.flush("collection")
    broker_module.send(CollectionJob.queue_name, CollectionJob.actor_name, kept.pk)

    assert reconciler.reconcile()["resent"] == 0  # sent within the period: not lost yet
    with time_machine.travel(timezone.now() + timedelta(seconds=11)):
        assert reconciler.reconcile()["resent"] == 1
        assert reconciler.reconcile()["resent"] == 0  # its message is back
    held = reconciler.held_job_ids(CollectionJob.queue_name, CollectionJob.actor_name)
    assert sorted(held) == sorted([kept.pk, lost.pk])
    assert CollectionJob.objects.get(pk=unsent.pk).progress == {}


def test_of_two_reconcilers_sending_one_lost_job_only_one_sends_it(redis_broker):
    job = create_job(make_task(), JobSpec(prompt="lost"))
    mark = CollectionJob.objects.get(pk=job.pk).progress[SENT_AT]
    redis_broker.flush("collection")
    assert reconciler._resend(CollectionJob, job.pk, mark)
    assert not reconciler._resend(CollectionJob, job.pk, mark)  # the mark moved on
    messages = redis_broker.client.hlen(f"{redis_broker.namespace}:collection.msgs")
    assert messages == 1


def test_a_pass_ends_a_batch_whose_jobs_are_final_and_closes_executions_left_open():
    batch = make_batch()
    job = add_job(batch, "a", {"prompt": "x"})
    job.acquire("w")
    execution = make_execution(job.task, status=TaskStatus.IN_PROGRESS, success=None)
    CollectionJob.objects.filter(pk=job.pk).update(execution=execution)
    job.fail("the worker died after ending the job")

    done = reconciler.reconcile()
    assert (done["closed"], done["batches_finished"]) == (1, 1)
    execution.refresh_from_db()
    assert execution.status == TaskStatus.FAILED
    assert execution.error == "the worker died after ending the job"
    assert not hasattr(execution, "training_example") or execution.training_example is None
    batch.refresh_from_db()
    assert batch.status == JobStatus.FAILED


def test_a_pass_removes_the_sandboxes_no_running_attempt_uses(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    running = CollectionJob.objects.create(task=make_task(), spec={"prompt": "x"})
    running.acquire("w")
    ended = CollectionJob.objects.create(task=make_task(), spec={"prompt": "x"}, status="failed")
    names = [
        f"job-{running.pk}-attempt-1",  # in use
        f"job-{running.pk}-attempt-0",  # an earlier, killed attempt
        f"job-{ended.pk}-attempt-1",
        "job-999999-attempt-1",  # a job deleted since
    ]
    for name in names:
        (sandboxes_dir() / name / "work").mkdir(parents=True)
    assert reconciler.reconcile()["sandboxes_removed"] == 3
    assert [p.name for p in sandboxes_dir().iterdir()] == [f"job-{running.pk}-attempt-1"]


# --- in a worker, against real faults ---------------------------------------------------------


def test_a_killed_workers_job_is_run_again_by_the_reconciler_within_seconds(redis_broker, tmp_path):
    first, job = start_slow_fix(tmp_path, **RECONCILING)
    os.killpg(first.pid, signal.SIGKILL)  # the worker, its children and the CLI
    first.communicate()
    killed_at = time.monotonic()
    assert CollectionJob.objects.get(pk=job.pk).status == JobStatus.RUNNING
    killed_sandbox = sandboxes_dir() / f"job-{job.pk}-attempt-1"
    assert killed_sandbox.is_dir()

    second = start_worker(**RECONCILING)
    try:
        done = wait_for(lambda: CollectionJob.objects.get(pk=job.pk).is_finished, timeout=90)
        recovered_s = time.monotonic() - killed_at
    finally:
        output = stop_worker(second)
    assert done, output
    print(f"killed worker's job finished {recovered_s:.1f} s after the kill (lease 4 s)")
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.attempts == 2, job.error
    execution = Execution.objects.get()
    assert execution.success and execution.metadata["interrupted_attempts"] == 1
    assert execution.messages.filter(type="result").count() == 1
    names = list(execution.tool_calls.values_list("name", flat=True))
    assert names == ["Read", "Edit", "Bash"]  # each tool step once
    assert not killed_sandbox.exists()
    # Well before Dramatiq's maintenance (off here; minutes with its defaults) would have.
    assert recovered_s < 45


@pytest.fixture
def private_redis(tmp_path) -> Iterator[tuple[str, Any]]:
    """A Redis server of our own that keeps nothing on disk, and a way to restart it."""
    port = 6400 + os.getpid() % 500
    require("redis-server", not port_open("127.0.0.1", port), f"port {port} is taken")
    cmd = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"]
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        procs.append(subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL))
        assert wait_for(lambda: port_open("127.0.0.1", port), 10)

    def restart() -> None:
        procs[-1].kill()
        procs[-1].wait()
        start()

    start()
    yield f"redis://127.0.0.1:{port}/0", restart
    for proc in procs:
        proc.kill()
        proc.wait()


def test_a_batch_whose_queued_jobs_were_lost_with_redis_finishes_once_a_worker_starts(
    private_redis, settings, tmp_path
):
    url, restart = private_redis
    settings.REDIS_URL = url
    previous = dramatiq.get_broker()
    broker = broker_module.make_broker()
    dramatiq.set_broker(broker)
    try:
        batch = make_batch(concurrency=2)
        spec = fix_spec(make_workspace(tmp_path / "ws")).model_dump(mode="json")
        jobs = [add_job(batch, f"job-{n}", spec) for n in range(3)]
        assert dispatch(batch) == 2
        assert reconciler.held_job_ids("collection", "run_collection_job") == {
            jobs[0].pk,
            jobs[1].pk,
        }
        restart()  # nothing kept: both messages are gone
        assert reconciler.held_job_ids("collection", "run_collection_job") == set()
        # The worker's first pass (at its start) is a period after the jobs were sent.
        time.sleep(1.1)
        started = time.monotonic()
        worker = start_worker(**RECONCILING)
        try:
            done = wait_for(lambda: GenerationBatch.objects.get(pk=batch.pk).is_finished, 120)
            took = time.monotonic() - started
        finally:
            output = stop_worker(worker)
    finally:
        broker.close()
        dramatiq.set_broker(previous)
    assert done, output
    print(f"batch with lost messages finished {took:.1f} s after its worker started")
    batch.refresh_from_db()
    assert batch.status == JobStatus.SUCCEEDED, batch.error
    assert set(batch.jobs.values_list("status", flat=True)) == {JobStatus.SUCCEEDED}
    assert set(batch.jobs.values_list("attempts", flat=True)) == {1}  # none ran twice
    assert Execution.objects.filter(success=True).count() == 3


# --- import uploads ---------------------------------------------------------------------------

TRANSCRIPT = Path(__file__).parent / "fixtures" / "transcripts" / "spotter__tool_heavy.jsonl"


UPLOADING = RECONCILING | {"COLLECTION_LEASE_SECONDS": "15"}


def many_sessions(n: int) -> bytes:
    """A zip of `n` Claude Code transcripts, each its own session (a big upload)."""
    text = TRANSCRIPT.read_text()
    (session_id,) = set(re.findall(r'"sessionId":"([^"]+)"', text))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for n_file in range(n):
            other = str(uuid.UUID(int=n_file + 1))
            zf.writestr(f"project/{other}.jsonl", text.replace(session_id, other))
    return buf.getvalue()


def imported() -> int:
    return Execution.objects.filter(source="imported").count()


def test_an_upload_whose_worker_is_killed_mid_import_is_imported_again_once(
    redis_broker, admin_user, client
):
    from collection.models import ImportUpload

    sessions = 600
    client.force_login(admin_user)
    archive = SimpleUploadedFile("big.zip", many_sessions(sessions))
    assert client.post(reverse("collection-import-list"), {"file": archive}).status_code == 302
    upload = ImportUpload.objects.get()
    # On SQLite a batch of the import holds the write lock, which its lease renewal waits for:
    # a lease longer than a batch (60 s by default; 4 s elsewhere in these tests).
    first = start_worker(**UPLOADING)
    # Killed once part of it is stored (a batch of sessions is committed at a time).
    mid_import = wait_for(lambda: imported() > 0, 90)
    os.killpg(first.pid, signal.SIGKILL)
    output = first.communicate()[0]
    assert mid_import, output
    killed_at, stored_before = time.monotonic(), imported()
    upload.refresh_from_db()
    assert (upload.status, upload.attempts) == (JobStatus.RUNNING, 1)
    assert 0 < stored_before < sessions, "the import ended before the kill: make it bigger"

    second = start_worker(**UPLOADING)
    try:
        done = wait_for(lambda: ImportUpload.objects.get(pk=upload.pk).is_finished, 180)
        took = time.monotonic() - killed_at
    finally:
        output = stop_worker(second)
    assert done, output
    print(f"upload killed after {stored_before} sessions: imported again, done {took:.1f} s later")
    upload.refresh_from_db()
    assert (upload.status, upload.attempts, upload.lease_expires_at) == (
        JobStatus.SUCCEEDED,
        2,
        None,
    ), upload.error
    assert imported() == sessions  # each session once: what the first attempt stored is known
    keys = list(Execution.objects.values_list("session_id", flat=True))
    assert len(keys) == len(set(keys)) == sessions
    assert upload.report["imported"] + upload.report["skipped"] + upload.report["updated"] == (
        sessions
    )
    assert dead_letters(redis_broker, "imports") == 0


def lapsed_upload(attempts: int) -> Any:
    from collection.models import ImportUpload

    upload = ImportUpload.objects.create(file_name="s.jsonl", path="gone/s.jsonl")
    upload.acquire("dead-worker")
    ImportUpload.objects.filter(pk=upload.pk).update(
        attempts=attempts, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    return upload


def test_a_pass_queues_again_an_upload_whose_worker_died_or_fails_it_out_of_attempts(
    redis_broker, settings
):
    from collection.models import ImportUpload

    settings.COLLECTION_MAX_ATTEMPTS = 2
    again, used_up = lapsed_upload(attempts=1), lapsed_upload(attempts=2)
    live = ImportUpload.objects.create(file_name="l.jsonl", path="live/l.jsonl")
    live.acquire("a-live-worker")

    done = reconciler.reconcile()
    assert (done["requeued"], done["failed"]) == (1, 1)
    again.refresh_from_db()
    used_up.refresh_from_db()
    assert (again.status, again.lease_owner) == (JobStatus.QUEUED, "")
    assert reconciler.held_job_ids(ImportUpload.queue_name, ImportUpload.actor_name) == {again.pk}
    assert used_up.status == JobStatus.FAILED
    assert used_up.error.startswith("gave up after 2 attempts: each time, its worker stopped")
    assert ImportUpload.objects.get(pk=live.pk).status == JobStatus.RUNNING
