"""The background-job state machine shared by collection jobs, generation batches and uploads."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from collection.models import (
    SENT_AT,
    BackgroundJob,
    CollectionJob,
    Execution,
    GenerationBatch,
    IllegalTransition,
    ImportUpload,
    JobStatus,
    LeasedJob,
    TrainingExample,
)
from tests.factories import make_example, make_execution, make_task

pytestmark = pytest.mark.django_db

QUEUED, RUNNING = JobStatus.QUEUED, JobStatus.RUNNING
SUCCEEDED, FAILED, CANCELLED = JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED
NOON = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def make_collection_job(**fields: Any) -> CollectionJob:
    return CollectionJob.objects.create(task=make_task(), **fields)


def make_batch(**fields: Any) -> GenerationBatch:
    return GenerationBatch.objects.create(name="nightly", **fields)


def make_upload(**fields: Any) -> ImportUpload:
    return ImportUpload.objects.create(file_name="a.jsonl", path="/nowhere/a", **fields)


MAKERS: dict[type[BackgroundJob], Callable[..., BackgroundJob]] = {
    CollectionJob: make_collection_job,
    GenerationBatch: make_batch,
    ImportUpload: make_upload,
}
ALL_MODELS = pytest.mark.parametrize("model", list(MAKERS), ids=lambda m: m.__name__)
SENT_MODELS = pytest.mark.parametrize(
    "model", [CollectionJob, ImportUpload], ids=lambda m: m.__name__
)

# Written out here rather than read from the models: this is what the tests hold them to.
LEGAL: dict[str, set[str]] = {
    "release": set(),  # leased jobs only
    "acquire": {QUEUED},
    "finish": {RUNNING},
    "fail": {QUEUED, RUNNING},
    "cancel": {QUEUED, RUNNING},
    "requeue": {FAILED, CANCELLED},
}
EXTRA_LEGAL: dict[type[BackgroundJob], dict[str, set[str]]] = {
    # Only when the lease lapsed: see the lease tests.
    CollectionJob: {"acquire": {RUNNING}, "release": {RUNNING}},
    GenerationBatch: {"requeue": {SUCCEEDED}},  # a batch resumes from any finished state
    ImportUpload: {"acquire": {RUNNING}, "release": {RUNNING}},
}
TARGET = {
    "release": QUEUED,
    "acquire": RUNNING,
    "finish": SUCCEEDED,
    "fail": FAILED,
    "cancel": CANCELLED,
    "requeue": QUEUED,
}
CALLS: dict[str, Callable[[BackgroundJob], None]] = {
    "acquire": lambda job: job.acquire(),
    "finish": lambda job: job.finish(),
    "fail": lambda job: job.fail("the disk is full"),
    "cancel": lambda job: job.cancel("stopped by a test"),
    "requeue": lambda job: job.requeue(),
    "release": lambda job: job.release(),
}


def legal_sources(model: type[BackgroundJob], transition: str) -> set[str]:
    return LEGAL[transition] | EXTRA_LEGAL[model].get(transition, set())


def cases(legal: bool) -> list[Any]:
    return [
        pytest.param(model, name, status, id=f"{model.__name__}-{name}-from-{status}")
        for model in MAKERS
        for name in CALLS
        if name in model.TRANSITIONS
        for status in JobStatus.values
        if (status in legal_sources(model, name)) == legal
        # Taking over or releasing a running leased job depends on its lease: tested on its own
        # below.
        and not (
            issubclass(model, LeasedJob) and name in ("acquire", "release") and status == RUNNING
        )
    ]


def row(job: BackgroundJob) -> dict[str, Any]:
    """The job's row as the database has it now."""
    return type(job).objects.filter(pk=job.pk).values().get()


@pytest.fixture
def sent(monkeypatch) -> list[tuple[Any, ...]]:
    """What `queue()` hands to the broker, recorded instead of sent."""
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr("trainingdash.broker.send", lambda *args: calls.append(args))
    return calls


# --- the transition table ----------------------------------------------------------------------


@pytest.mark.parametrize(("model", "name", "status"), cases(legal=True))
def test_a_legal_transition_moves_the_row_to_its_target_state(
    model, name, status, django_capture_on_commit_callbacks
):
    job = MAKERS[model](status=status)
    with django_capture_on_commit_callbacks(execute=False):
        CALLS[name](job)
    target = TARGET[name]
    assert job.status == target
    assert row(job)["status"] == target
    assert (job.finished_at is not None) == (target in (SUCCEEDED, FAILED, CANCELLED))


@pytest.mark.parametrize(("model", "name", "status"), cases(legal=False))
def test_an_illegal_transition_raises_and_leaves_the_row_unchanged(
    model, name, status, django_capture_on_commit_callbacks
):
    fields: dict[str, Any] = {"status": status, "error": "as it was"}
    if model is CollectionJob and status == RUNNING:
        fields |= {"lease_owner": "worker-a", "lease_expires_at": NOON + timedelta(hours=1)}
    job = MAKERS[model](**fields)
    before = row(job)
    with (
        time_machine.travel(NOON, tick=False),
        django_capture_on_commit_callbacks(execute=False) as callbacks,
        pytest.raises(IllegalTransition, match=f"cannot {name} when {status}"),
    ):
        CALLS[name](job)
    assert row(job) == before
    assert job.status == status
    assert callbacks == []  # nothing was queued


@ALL_MODELS
@pytest.mark.parametrize(
    ("status", "active", "finished"),
    [
        (QUEUED, True, False),
        (RUNNING, True, False),
        (SUCCEEDED, False, True),
        (FAILED, False, True),
        (CANCELLED, False, True),
    ],
)
def test_is_active_and_is_finished_follow_the_status(model, status, active, finished):
    job = MAKERS[model](status=status)
    assert (job.is_active, job.is_finished) == (active, finished)


@ALL_MODELS
@pytest.mark.parametrize("status", JobStatus.values)
def test_can_answers_from_the_transition_table(model, status):
    job = MAKERS[model](status=status)
    allowed = {name for name in CALLS if status in legal_sources(model, name)}
    assert {name for name in model.TRANSITIONS if job.can(name)} == allowed


# --- what each transition writes ---------------------------------------------------------------


@ALL_MODELS
def test_acquiring_a_queued_job_runs_it_from_now(model):
    job = MAKERS[model]()
    with time_machine.travel(NOON, tick=False):
        job.acquire()
    assert (job.status, job.started_at, job.finished_at) == (RUNNING, NOON, None)


def test_acquiring_a_collection_job_takes_a_lease_and_counts_the_attempt(settings):
    settings.COLLECTION_LEASE_SECONDS = 30
    job = make_collection_job()
    with time_machine.travel(NOON, tick=False):
        job.acquire("worker-a")
    assert (job.lease_owner, job.lease_expires_at) == ("worker-a", NOON + timedelta(seconds=30))
    assert job.attempts == 1


@ALL_MODELS
def test_finishing_clears_an_earlier_error_and_stamps_the_end(model):
    job = MAKERS[model](status=RUNNING, error="a hiccup")
    with time_machine.travel(NOON, tick=False):
        job.finish()
    assert (job.status, job.error, job.finished_at) == (SUCCEEDED, "", NOON)


@ALL_MODELS
def test_failing_keeps_the_error_cut_to_4000_characters(model):
    job = MAKERS[model](status=RUNNING)
    job.fail("x" * 5000)
    assert job.status == FAILED
    assert row(job)["error"] == "x" * 4000


@ALL_MODELS
def test_cancelling_records_the_reason_and_the_request(model):
    job = MAKERS[model]()
    job.cancel("the batch was stopped")
    assert (job.status, job.error, job.cancel_requested) == (
        CANCELLED,
        "the batch was stopped",
        True,
    )


@pytest.mark.parametrize("end", ["finish", "fail", "cancel"])
def test_a_collection_job_that_ends_gives_up_its_lease(end):
    job = make_collection_job()
    job.acquire("worker-a")
    CALLS[end](job)
    assert row(job)["lease_expires_at"] is None


@SENT_MODELS
@pytest.mark.parametrize("status", [FAILED, CANCELLED])
def test_requeueing_resets_the_job_and_sends_it_again_on_commit(
    model, status, sent, django_capture_on_commit_callbacks
):
    job = MAKERS[model](
        status=status, error="boom", cancel_requested=True, finished_at=NOON, started_at=NOON
    )
    with django_capture_on_commit_callbacks(execute=True):
        job.requeue()
        assert sent == []  # not before the commit
    assert (job.status, job.error, job.cancel_requested, job.finished_at) == (
        QUEUED,
        "",
        False,
        None,
    )
    assert sent == [(model.queue_name, model.actor_name, job.pk)]


def test_requeueing_a_finished_batch_sends_nothing(sent, django_capture_on_commit_callbacks):
    batch = make_batch(status=SUCCEEDED, finished_at=NOON)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        batch.requeue()
    assert batch.status == QUEUED and batch.finished_at is None
    assert callbacks == [] and sent == []


def test_requeueing_a_collection_job_detaches_its_execution_and_keeps_the_old_one(
    django_capture_on_commit_callbacks,
):
    task = make_task()
    old = make_execution(task, success=False)
    example = make_example(old)
    job = make_collection_job(
        status=FAILED, execution=old, progress={"messages": 7, "tool_calls": 2, "last": "Bash"}
    )
    with time_machine.travel(NOON, tick=False), django_capture_on_commit_callbacks(execute=False):
        job.requeue()
    assert job.status == QUEUED
    assert job.execution is None and row(job)["execution_id"] is None
    assert job.progress == row(job)["progress"] == {SENT_AT: NOON.isoformat()}
    assert Execution.objects.filter(pk=old.pk).count() == 1
    assert TrainingExample.objects.get(pk=example.pk).execution_id == old.pk


# --- queue() -----------------------------------------------------------------------------------


@SENT_MODELS
def test_queueing_sends_one_message_by_actor_name_once_the_transaction_commits(
    model, sent, django_capture_on_commit_callbacks
):
    job = MAKERS[model]()
    with django_capture_on_commit_callbacks(execute=True):
        job.queue()
        assert sent == []
    assert sent == [(model.queue_name, model.actor_name, job.pk)]


@SENT_MODELS
@pytest.mark.parametrize("status", [RUNNING, SUCCEEDED, FAILED, CANCELLED])
def test_queueing_a_job_that_is_not_queued_raises(
    model, status, sent, django_capture_on_commit_callbacks
):
    job = MAKERS[model](status=status)
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(IllegalTransition, match=f"cannot queue when {status}"),
    ):
        job.queue()
    assert callbacks == [] and sent == []


def test_a_batch_is_never_sent_itself(sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        make_batch().queue()
    assert callbacks == [] and sent == []


# --- cancelling --------------------------------------------------------------------------------


@ALL_MODELS
def test_request_cancel_on_a_queued_job_cancels_it_now(model):
    job = MAKERS[model]()
    job.request_cancel()
    assert (job.status, job.cancel_requested) == (CANCELLED, True)
    assert row(job)["finished_at"] is not None


@ALL_MODELS
def test_request_cancel_on_a_running_job_only_asks_its_worker_to_stop(model):
    job = MAKERS[model](status=RUNNING)
    job.request_cancel()
    assert (job.status, job.cancel_requested, job.finished_at) == (RUNNING, True, None)


@ALL_MODELS
@pytest.mark.parametrize("status", [SUCCEEDED, FAILED, CANCELLED])
def test_request_cancel_on_a_finished_job_changes_nothing(model, status):
    job = MAKERS[model](status=status)
    before = row(job)
    job.request_cancel()
    assert row(job) == before


@ALL_MODELS
def test_request_cancel_from_a_stale_copy_stops_the_worker_that_took_the_job_meanwhile(model):
    job = MAKERS[model]()
    stale = type(job).objects.get(pk=job.pk)
    job.acquire()
    stale.request_cancel()
    assert (stale.status, stale.cancel_requested) == (RUNNING, True)
    assert (row(job)["status"], row(job)["cancel_requested"]) == (RUNNING, True)


@ALL_MODELS
def test_a_job_whose_cancel_was_requested_is_not_acquired(model):
    job = MAKERS[model](cancel_requested=True)
    before = row(job)
    with pytest.raises(IllegalTransition, match="cannot acquire when queued"):
        job.acquire()
    assert row(job) == before


# --- leases and races --------------------------------------------------------------------------


def test_a_job_whose_lease_lapsed_is_taken_over_by_another_owner(settings):
    settings.COLLECTION_LEASE_SECONDS = 30
    job = make_collection_job()
    with time_machine.travel(NOON, tick=False) as clock:
        job.acquire("worker-a")
        clock.shift(timedelta(seconds=31))
        taker = CollectionJob.objects.get(pk=job.pk)
        taker.acquire("worker-b")
    assert (taker.status, taker.lease_owner, taker.attempts) == (RUNNING, "worker-b", 2)
    assert taker.lease_expires_at == NOON + timedelta(seconds=61)
    assert taker.started_at == NOON  # the job started with its first attempt


def test_a_live_lease_is_not_taken_over_even_at_its_last_instant(settings):
    settings.COLLECTION_LEASE_SECONDS = 30
    job = make_collection_job()
    with time_machine.travel(NOON, tick=False) as clock:
        job.acquire("worker-a")
        before = row(job)
        clock.shift(timedelta(seconds=30))
        with pytest.raises(IllegalTransition, match="cannot acquire when running"):
            CollectionJob.objects.get(pk=job.pk).acquire("worker-b")
    assert row(job) == before


def test_a_lapsed_lease_on_a_job_asked_to_stop_is_not_taken_over(settings):
    settings.COLLECTION_LEASE_SECONDS = 30
    job = make_collection_job()
    with time_machine.travel(NOON, tick=False) as clock:
        job.acquire("worker-a")
        job.request_cancel()
        before = row(job)
        clock.shift(timedelta(minutes=5))
        with pytest.raises(IllegalTransition, match="cannot acquire when running"):
            CollectionJob.objects.get(pk=job.pk).acquire("worker-b")
    assert row(job) == before


@ALL_MODELS
def test_of_two_racing_acquires_on_one_queued_row_exactly_one_wins(model):
    job = MAKERS[model]()
    first, second = (type(job).objects.get(pk=job.pk) for _ in range(2))
    first.acquire()
    with pytest.raises(IllegalTransition, match="cannot acquire when running"):
        second.acquire()
    assert second.status == RUNNING  # the loser now sees the row as the winner left it


def test_the_loser_of_an_acquire_race_leaves_the_winners_lease_alone():
    job = make_collection_job()
    first, second = (CollectionJob.objects.get(pk=job.pk) for _ in range(2))
    first.acquire("worker-a")
    with pytest.raises(IllegalTransition):
        second.acquire("worker-b")
    assert (second.lease_owner, second.attempts) == ("worker-a", 1)
    assert (row(job)["lease_owner"], row(job)["attempts"]) == ("worker-a", 1)


# --- a job whose worker is gone ----------------------------------------------------------------


def lapsed_job(settings, clock, **fields: Any) -> CollectionJob:
    """A collection job taken by worker-a (then given `fields`), whose lease lapsed a second
    ago."""
    settings.COLLECTION_LEASE_SECONDS = 30
    job = make_collection_job()
    job.acquire("worker-a")
    CollectionJob.objects.filter(pk=job.pk).update(**fields)
    clock.shift(timedelta(seconds=31))
    return CollectionJob.objects.get(pk=job.pk)


def test_a_job_whose_lease_lapsed_is_released_to_the_queue_and_sent_again(
    settings, sent, django_capture_on_commit_callbacks
):
    with time_machine.travel(NOON, tick=False) as clock:
        job = lapsed_job(settings, clock)
        with django_capture_on_commit_callbacks(execute=True):
            job.release()
    assert (job.status, job.lease_owner, job.lease_expires_at, job.attempts) == (
        QUEUED,
        "",
        None,
        1,
    )
    assert row(job)["progress"] == {SENT_AT: (NOON + timedelta(seconds=31)).isoformat()}
    assert sent == [(CollectionJob.queue_name, CollectionJob.actor_name, job.pk)]
    job.acquire("worker-b")
    assert job.attempts == 2  # the next attempt is counted


@pytest.mark.parametrize("fields", [{}, {"cancel_requested": True}], ids=["live", "cancelled"])
def test_a_live_lease_or_a_job_asked_to_stop_is_not_released(
    settings, fields, django_capture_on_commit_callbacks
):
    settings.COLLECTION_LEASE_SECONDS = 30
    job = make_collection_job()
    with time_machine.travel(NOON, tick=False) as clock:
        job.acquire("worker-a")
        CollectionJob.objects.filter(pk=job.pk).update(**fields)
        clock.shift(timedelta(seconds=30 if not fields else 31))
        before = row(job)
        with (
            django_capture_on_commit_callbacks(execute=False) as callbacks,
            pytest.raises(IllegalTransition, match="cannot release when running"),
        ):
            CollectionJob.objects.get(pk=job.pk).release()
    assert row(job) == before and callbacks == []


@pytest.mark.parametrize(
    ("fields", "what", "status", "error"),
    [
        ({}, "requeued", QUEUED, ""),
        ({"cancel_requested": True}, "cancelled", CANCELLED, "cancelled by a user"),
        ({"attempts": 3}, "failed", FAILED, "gave up after 3 attempts"),
    ],
)
def test_revive_requeues_a_lapsed_job_or_ends_it_when_asked_to_stop_or_out_of_attempts(
    settings, fields, what, status, error, django_capture_on_commit_callbacks
):
    settings.COLLECTION_MAX_ATTEMPTS = 3
    with time_machine.travel(NOON, tick=False) as clock:
        job = lapsed_job(settings, clock, **fields)
        with django_capture_on_commit_callbacks(execute=False):
            assert job.revive() == what
    assert (row(job)["status"], row(job)["lease_expires_at"]) == (status, None)
    assert row(job)["error"].startswith(error)


def test_revive_leaves_a_live_lease_alone(settings):
    settings.COLLECTION_LEASE_SECONDS = 30
    job = make_collection_job()
    job.acquire("worker-a")
    before = row(job)
    assert job.revive() == ""
    assert row(job) == before


def test_a_worker_that_lost_its_lease_cannot_end_the_job_its_new_owner_runs(settings):
    with time_machine.travel(NOON, tick=False) as clock:
        job = lapsed_job(settings, clock)
        CollectionJob.objects.get(pk=job.pk).acquire("worker-b")
    for end in (job.finish, lambda **kw: job.fail("late", **kw), job.cancel):
        with pytest.raises(IllegalTransition, match="when running"):
            end(owner="worker-a")
    assert (row(job)["status"], row(job)["lease_owner"]) == (RUNNING, "worker-b")
    job.finish(owner="worker-b")
    assert row(job)["status"] == SUCCEEDED


def test_requeueing_counts_attempts_afresh(django_capture_on_commit_callbacks):
    job = make_collection_job(status=FAILED, attempts=3)
    with django_capture_on_commit_callbacks(execute=False):
        job.requeue()
    assert row(job)["attempts"] == 0


def test_an_upload_is_taken_under_the_lease_of_the_thread_that_imports_it():
    from collection.models import this_thread

    upload = make_upload()
    upload.acquire()  # as its import (collection.jobs.uploads) does: no owner named
    assert (upload.lease_owner, upload.attempts) == (this_thread(), 1)
    assert upload.lease_expires_at is not None and not upload.lease_lapsed


@pytest.mark.parametrize(
    ("code", "said"),
    [
        (143, "the Claude Code CLI was stopped by SIGTERM (exit code 143)"),  # it handled it
        (-9, "the Claude Code CLI was stopped by SIGKILL (exit code -9)"),  # killed outright
        (1, "ProcessError: Command failed (exit code: 1)"),  # not a signal: as the SDK says
    ],
)
def test_a_crashed_cli_is_described_by_the_signal_that_stopped_it(code: int, said: str):
    from claude_agent_sdk import ProcessError

    from collection.jobs.runner import describe_crash

    assert describe_crash(ProcessError("Command failed", exit_code=code)) == said
