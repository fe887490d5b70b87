"""The actors on a StubBroker: what services queue reaches them, and what is retried.

A real worker through Redis (and one killed mid-session) is in tests/test_broker.py.
"""

from __future__ import annotations

from pathlib import Path

import dramatiq
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from dramatiq.brokers.stub import StubBroker

from collection.jobs.actors import rescore_examples
from collection.jobs.runner import create_job
from collection.jobs.uploads import receive_upload
from collection.models import CollectionJob, ImportUpload, JobStatus, TrainingExample
from collection.sessions.spec import JobSpec
from tests.factories import make_example, make_execution, make_task
from tests.sessions import FIX_SCRIPT, TOOLS, VERIFIER, make_workspace
from trainingdash.broker import JobError, send

# Worker threads have their own database connections: they only see committed rows.
pytestmark = pytest.mark.django_db(transaction=True)
TRANSCRIPT = Path(__file__).parent / "fixtures" / "transcripts" / "spotter__short.jsonl"


def queued(broker: StubBroker, queue_name: str) -> list[dramatiq.Message]:
    return [dramatiq.Message.decode(data) for data in list(broker.queues[queue_name].queue)]


def run_queue(broker: StubBroker, queue_name: str) -> None:
    """Process every message on the queue (retries included) with real worker threads."""
    worker = dramatiq.Worker(broker, worker_timeout=100)
    worker.start()
    try:
        broker.join(queue_name, timeout=120_000, fail_fast=False)
        worker.join()
    finally:
        worker.stop()


def test_create_job_queues_run_collection_job_and_the_worker_finishes_the_job(
    stub_broker, tmp_path
):
    spec = JobSpec(
        prompt="Fix the failing test",
        allowed_tools=TOOLS,
        script=FIX_SCRIPT,
        workspace=str(make_workspace(tmp_path / "workspace")),
        verifier=VERIFIER,
    )
    job = create_job(make_task(), spec)

    [message] = queued(stub_broker, "collection")
    assert (message.actor_name, message.args) == ("run_collection_job", (job.pk,))
    run_queue(stub_broker, "collection")
    job = CollectionJob.objects.get(pk=job.pk)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.attempts == 1 and job.execution.success
    assert stub_broker.dead_letters == []


def test_a_received_upload_is_imported_by_the_import_upload_actor(
    stub_broker, reviewer, settings, tmp_path
):
    settings.DATA_DIR = tmp_path
    content = TRANSCRIPT.read_bytes()
    upload = receive_upload(SimpleUploadedFile("short.jsonl", content), reviewer)

    [message] = queued(stub_broker, "imports")
    assert (message.actor_name, message.args) == ("import_upload", (upload.pk,))
    run_queue(stub_broker, "imports")
    upload = ImportUpload.objects.get(pk=upload.pk)
    assert upload.status == JobStatus.SUCCEEDED, upload.error
    assert upload.report["imported"] == 1 and upload.report["errors"] == []


def test_rescore_examples_rescores_the_examples_it_is_given(stub_broker):
    examples = [make_example(make_execution(success=True), quality_score=0.0) for _ in range(3)]
    left_alone = make_example(make_execution(success=True), quality_score=0.0)
    ids = [e.pk for e in examples]
    stub_broker.enqueue(rescore_examples.message(ids, "tests.test_scoring.seed_custom_scorer"))

    run_queue(stub_broker, "maintenance")
    scores = dict(TrainingExample.objects.values_list("pk", "quality_score"))
    assert scores == {**dict.fromkeys(ids, 1.0), left_alone.pk: 0.0}
    assert TrainingExample.objects.filter(is_golden=True).count() == 3


@pytest.mark.parametrize(
    "error",
    [JobError("x"), RuntimeError("x")],
    ids=["non-retryable-job-error", "any-other-error"],
)
def test_an_error_that_does_not_say_retry_is_dead_lettered_after_one_attempt(
    stub_broker, monkeypatch, error
):
    calls: list[int] = []

    def run_job(job_id: int) -> None:
        calls.append(job_id)
        raise error

    monkeypatch.setattr("collection.jobs.actors.run_job", run_job)
    send("collection", "run_collection_job", 42)

    run_queue(stub_broker, "collection")
    assert calls == [42]
    [dead] = stub_broker.dead_letters
    assert (dead.actor_name, dead.args) == ("run_collection_job", (42,))


def test_a_retryable_error_is_retried_until_the_job_runs(stub_broker, monkeypatch):
    calls: list[int] = []

    def run_job(job_id: int) -> None:
        calls.append(job_id)
        if len(calls) == 1:
            raise JobError("job 42 is leased by another worker", retryable=True)

    monkeypatch.setattr("collection.jobs.actors.run_job", run_job)
    send("collection", "run_collection_job", 42)

    run_queue(stub_broker, "collection")
    assert calls == [42, 42]
    assert stub_broker.dead_letters == []
