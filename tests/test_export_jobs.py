"""Export jobs through the service (as the actor calls it), the actor on a StubBroker, and once
through Redis with a real worker killed midway."""

from __future__ import annotations

import os
import signal
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dramatiq
import pytest
import time_machine
from django.utils import timezone

import exports.actors  # noqa: F401 - declares run_export_job before the stub broker copies actors
from collection.models import JobStatus, TaskStatus, TrainingExample
from exports import jobs
from exports.bundles import exports_dir
from exports.jobs import (
    ExportRequestError,
    bundle_name,
    prune_expired,
    run_export_job,
    start_export,
)
from exports.models import ExportJob
from exports.options import ExportOptions
from tests.factories import make_example, make_execution, make_task, make_trajectory
from tests.test_broker import FAST_FAILOVER, start_worker, stop_worker, wait_for
from trainingdash.broker import JobError

pytestmark = pytest.mark.django_db(transaction=True)
BENCH = Path(__file__).resolve().parent.parent / "bench"


def trajectories(n: int, category: str = "debugging") -> list[TrainingExample]:
    task = make_task(category=category)
    return [
        make_example(make_trajectory(make_execution(task, status=TaskStatus.IN_PROGRESS)))
        for _ in range(n)
    ]


def start(format_name: str = "jsonl", **kw) -> ExportJob:
    """A queued job, its message left unsent (these tests call the service themselves)."""
    job = ExportJob.objects.create(format=format_name, options=ExportOptions().model_dump(), **kw)
    return job


def folder() -> list[str]:
    return sorted(p.name for p in exports_dir().iterdir())


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    """Each test its own exports folder (a worker subprocess is given the same one)."""
    settings.DATA_DIR = tmp_path


class Interrupted(BaseException):
    """Stands in for a worker killed midway: nothing after it runs in the job's code."""


# --- the service ---------------------------------------------------------------------------------


def test_an_export_job_builds_its_bundle_and_keeps_it_for_the_retention(settings):
    settings.TRAININGDASH_EXPORT_RETENTION_DAYS = 3
    trajectories(3)
    trajectories(2, category="testing")
    job = start(filters={"category": "debugging"})

    with time_machine.travel("2026-11-30 12:00:00+00:00", tick=False):
        job = run_export_job(job.pk)
    assert job is not None and job.status == JobStatus.SUCCEEDED, job.error
    assert job.bundle_name == f"export-{job.pk}-jsonl.zip" and folder() == [job.bundle_name]
    assert job.size == (exports_dir() / job.bundle_name).stat().st_size
    assert job.counts == {"records": 3, "written": 3, "left_out": {}}
    assert job.manifest["filters"] == {"category": "debugging"}
    assert (job.progress_done, job.progress_total, job.attempts) == (3, 3, 1)
    assert job.expires_at == datetime(2026, 12, 3, 12, tzinfo=UTC)
    assert job.lease_expires_at is None and job.has_bundle


def test_a_selection_exports_exactly_the_selected_examples():
    chosen, _other, also = trajectories(3)
    job = start(example_ids=[chosen.pk, also.pk])
    job = run_export_job(job.pk)
    assert job is not None and job.counts["records"] == 2
    assert job.manifest["selected_examples"] == 2 and job.manifest["filters"] == {}


def test_a_redelivered_export_does_not_run_twice():
    trajectories(1)
    job = start()
    assert run_export_job(job.pk) is not None
    assert run_export_job(job.pk) is None
    assert ExportJob.objects.get().attempts == 1


def test_an_export_that_cannot_be_made_fails_with_the_reason_and_leaves_no_file():
    trajectories(1)
    job = start(format_name="no-such-format")
    job = run_export_job(job.pk)
    assert job is not None and job.status == JobStatus.FAILED
    assert "no-such-format" in job.error and folder() == []


def test_a_running_export_stops_when_cancelled_and_leaves_no_file(monkeypatch):
    trajectories(4)
    job = start()
    monkeypatch.setattr(jobs, "PROGRESS_EVERY_S", 0)
    report = jobs._Reporter.__call__

    def cancel_at_the_second(self: jobs._Reporter, done: int, total: int) -> None:
        if done == 2:
            ExportJob.objects.get(pk=self.job_id).request_cancel()
        report(self, done, total)

    monkeypatch.setattr(jobs._Reporter, "__call__", cancel_at_the_second)
    job = run_export_job(job.pk)
    assert job is not None and job.status == JobStatus.CANCELLED
    assert job.progress_done == 2 and folder() == []


def test_an_export_killed_midway_leaves_no_bundle_and_runs_again_once_its_lease_lapses(
    monkeypatch,
):
    trajectories(3)
    job = start()
    report = jobs._Reporter.__call__

    def killed_at_the_second(self: jobs._Reporter, done: int, total: int) -> None:
        report(self, done, total)
        if done == 2:
            raise Interrupted

    monkeypatch.setattr(jobs._Reporter, "__call__", killed_at_the_second)
    with pytest.raises(Interrupted):
        run_export_job(job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and bundle_name(job) not in folder()
    assert not (exports_dir() / bundle_name(job)).exists()

    monkeypatch.setattr(jobs._Reporter, "__call__", report)
    with pytest.raises(JobError) as refused:  # redelivered while the dead worker's lease holds
        run_export_job(job.pk)
    assert refused.value.retryable
    with time_machine.travel(timezone.now() + timedelta(minutes=5)):
        job = run_export_job(job.pk)
    assert job is not None and job.status == JobStatus.SUCCEEDED and job.attempts == 2
    assert folder() == [bundle_name(job)]
    assert zipfile.ZipFile(exports_dir() / bundle_name(job)).testzip() is None


def test_a_failed_export_can_be_queued_again_and_then_succeeds(stub_broker):
    trajectories(1)
    job = start(format_name="jsonl", status=JobStatus.FAILED, error="disk full")
    job.requeue()
    assert job.status == JobStatus.QUEUED and job.error == ""
    [message] = [dramatiq.Message.decode(m) for m in stub_broker.queues["exports"].queue]
    assert message.args == (job.pk,)
    job = run_export_job(job.pk)
    assert job is not None and job.status == JobStatus.SUCCEEDED


def test_expired_bundles_are_deleted_when_exports_run():
    old = start(status=JobStatus.SUCCEEDED, bundle_name="export-1-jsonl.zip")
    old.expires_at = timezone.now() - timedelta(seconds=1)
    old.save()
    (exports_dir() / old.bundle_name).write_bytes(b"PK")
    kept = start(status=JobStatus.SUCCEEDED, bundle_name="export-2-jsonl.zip")
    kept.expires_at = timezone.now() + timedelta(days=1)
    kept.save()
    (exports_dir() / kept.bundle_name).write_bytes(b"PK")
    trajectories(1)

    new = run_export_job(start().pk)
    assert new is not None
    assert folder() == sorted([kept.bundle_name, bundle_name(new)])
    old.refresh_from_db()
    assert old.bundle_name == "" and old.is_expired
    assert prune_expired(now=timezone.now() + timedelta(days=30)) == 2
    assert folder() == []


def test_start_export_refuses_an_unknown_format_and_an_empty_selection():
    with pytest.raises(ExportRequestError, match="unknown format 'csv'"):
        start_export("csv", ExportOptions())
    with pytest.raises(ExportRequestError, match="select some examples"):
        start_export("jsonl", ExportOptions(), example_ids=[])
    assert ExportJob.objects.count() == 0


# --- the actor -----------------------------------------------------------------------------------


def test_start_export_queues_the_actor_and_a_worker_builds_the_bundle(stub_broker, admin_user):
    trajectories(2)
    job = start_export("jsonl", ExportOptions(), filters={"category": "debugging"}, user=admin_user)

    [message] = [dramatiq.Message.decode(m) for m in stub_broker.queues["exports"].queue]
    assert (message.actor_name, message.args) == ("run_export_job", (job.pk,))
    worker = dramatiq.Worker(stub_broker, worker_timeout=100)
    worker.start()
    try:
        stub_broker.join("exports", timeout=60_000)
        worker.join()
    finally:
        worker.stop()
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.counts["written"] == 2 and stub_broker.dead_letters == []


# --- a real worker through Redis, killed midway ---------------------------------------------------


def many_examples(n: int) -> None:
    """n examples (a tenth with full trajectories) in bulk, as the benchmarks make them."""
    sys.path.insert(0, str(BENCH))
    try:
        from review_data import populate
    finally:
        sys.path.remove(str(BENCH))
    populate(n, seed=2)


def test_an_export_whose_worker_is_killed_completes_on_redelivery_with_no_half_bundle():
    many_examples(8000)
    first = start_worker(**FAST_FAILOVER)
    job = start_export("jsonl", ExportOptions())
    name = bundle_name(job)
    try:
        midway = wait_for(
            lambda: ExportJob.objects.filter(pk=job.pk, progress_done__gt=0).exists(), timeout=60
        )
        assert midway, "the export never reported progress"
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.communicate()
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and 0 < job.progress_done < job.progress_total
    assert not (exports_dir() / name).exists()

    second = start_worker(**FAST_FAILOVER)
    try:
        done = wait_for(lambda: ExportJob.objects.get(pk=job.pk).is_finished, timeout=120)
    finally:
        output = stop_worker(second)
    assert done, output
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.attempts == 2 and job.progress_done == job.progress_total
    assert folder() == [name]  # the dead attempt's temporary files are gone
    with zipfile.ZipFile(exports_dir() / name) as archive:
        assert archive.testzip() is None
        assert sorted(archive.namelist()) == ["README.md", "data.jsonl", "manifest.json"]
