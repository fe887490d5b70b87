"""Batch generation over the template library, through real Redis and real workers."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from collection.jobs.batches import (
    SENT,
    BatchRules,
    BatchTrainingGenerator,
    GenerationParams,
    can_resume,
    cancel_batch,
    ceiling_reason,
    plan,
    refresh_status,
    resume_batch,
    start_batch,
    wait_for_batch,
)
from collection.models import (
    TEMPLATE_CATEGORIES,
    CollectionJob,
    Execution,
    GenerationBatch,
    JobStatus,
)
from collection.task_templates import TaskTemplateLibrary
from tests.test_broker import start_worker, stop_worker
from trainingdash.broker import InProcessWorkers


@pytest.fixture(scope="module")
def library() -> TaskTemplateLibrary:
    return TaskTemplateLibrary.load([])


@pytest.fixture
def sent(monkeypatch) -> list[int]:
    """The job ids handed to the broker, recorded instead of sent."""
    calls: list[int] = []
    monkeypatch.setattr("trainingdash.broker.send", lambda queue, actor, pk: calls.append(pk))
    return calls


# The one easy debugging template from seed 1 on: scripted sessions of about $0.09 (seed 0
# wanders off for $0.19), each under its $0.10 budget (TRAININGDASH_SCORING's "easy").
EASY = {"categories": ["debugging"], "difficulties": ["easy"], "seed": 1}


def max_running_at_once(jobs: list[CollectionJob]) -> int:
    """The most jobs RUNNING at the same moment, from when each started and finished."""
    events = sorted(
        [(j.started_at, 1) for j in jobs if j.started_at]
        + [(j.finished_at, -1) for j in jobs if j.finished_at],
        key=lambda e: (e[0], e[1]),  # at the same instant, an end before a start
    )
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def test_a_plan_is_deterministic_and_covers_every_category(library):
    params = GenerationParams(examples_per_category=3, seed=7)
    first, again = plan(params, library), plan(params, library)
    assert first == again
    assert len(first) == 3 * len(TEMPLATE_CATEGORIES)
    assert len({p.plan_key for p in first}) == len(first)
    categories = {library.get(p.template).category for p in first}
    assert categories == set(TEMPLATE_CATEGORIES)


def test_a_plan_honours_difficulties_chains_and_multi_agent(library):
    params = GenerationParams(
        seed=0,
        examples_per_category=2,
        difficulties=["easy"],
        include_multi_agent=False,
        include_chains=False,
    )
    chosen = [library.get(p.template) for p in plan(params, library)]
    assert {t.difficulty for t in chosen} == {"easy"}
    assert "multi_agent" not in {t.category for t in chosen}
    assert "chain" not in {t.job_kind for t in chosen}


def test_a_plan_needs_a_seed(library):
    with pytest.raises(ValueError, match="a plan needs a seed"):
        plan(GenerationParams(), library)


def test_a_batch_without_a_seed_gets_a_fresh_one_and_keeps_it(db, library, sent):
    params = GenerationParams(examples_per_category=2, categories=["testing"])
    first, second = (start_batch(params, library=library) for _ in range(2))
    assert first.params["seed"] != second.params["seed"]
    keys = [set(b.jobs.values_list("plan_key", flat=True)) for b in (first, second)]
    assert keys[0] != keys[1]
    # The stored seed is the plan's: the batch page can show it and reproduce the batch.
    stored = plan(GenerationParams.model_validate(first.params), library)
    assert keys[0] == {p.plan_key for p in stored}


def test_the_same_seed_reproduces_a_batch_exactly(db, library, sent):
    params = GenerationParams(examples_per_category=3, categories=["testing", "debugging"], seed=42)
    batches = [start_batch(params, library=library) for _ in range(2)]
    runs = [
        list(b.jobs.order_by("id").values_list("plan_key", "kind", "task__name", "spec"))
        for b in batches
    ]
    assert runs[0] == runs[1]
    assert len(runs[0]) == 6 and batches[0].params == batches[1].params


def test_an_empty_plan_is_refused_naming_the_filters(db, library):
    with pytest.raises(ValueError, match="no templates match"):
        start_batch(GenerationParams(categories=["nonexistent"]), library=library)


def test_a_batch_over_every_category_runs_through_redis_and_a_real_worker(
    transactional_db, library
):
    batch = start_batch(GenerationParams(examples_per_category=1, seed=1), library=library)
    worker = start_worker()
    try:
        stats = wait_for_batch(batch, poll_s=0.5, timeout_s=400)
    finally:
        output = stop_worker(worker)
    assert stats["status"] == JobStatus.SUCCEEDED, output[-3000:]
    assert stats["finished"] == stats["planned"] == len(TEMPLATE_CATEGORIES)
    assert stats["total_examples"] == stats["planned"]
    assert set(stats["by_category"]) == set(TEMPLATE_CATEGORIES)
    assert stats["total_cost_usd"] > 0
    assert Execution.objects.count() == stats["planned"]  # one per planned session, no more
    kinds = set(batch.jobs.values_list("kind", flat=True))
    assert "multi_agent" in kinds
    assert 0 <= stats["golden_examples"] <= stats["total_examples"]


def test_a_cancelled_batch_resumes_without_running_anything_twice(
    transactional_db, library, django_capture_on_commit_callbacks
):
    params = GenerationParams(examples_per_category=2, categories=["debugging", "testing"])
    with django_capture_on_commit_callbacks(execute=False):
        batch = start_batch(params, library=library)
    cancel_batch(batch)
    assert set(batch.jobs.values_list("status", flat=True)) == {JobStatus.CANCELLED}

    with InProcessWorkers(2):
        resume_batch(batch, library)
        stats = wait_for_batch(batch, poll_s=0.5, timeout_s=300)
    assert stats["finished"] == stats["planned"] == 4
    assert stats["by_status"] == {JobStatus.SUCCEEDED: 4}
    attempts = sorted(batch.jobs.values_list("attempts", flat=True))

    batch.refresh_from_db()
    assert not can_resume(batch, library)
    with pytest.raises(ValueError, match="nothing to resume"):
        resume_batch(batch, library)
    assert CollectionJob.objects.filter(batch=batch).count() == 4
    assert Execution.objects.count() == 4
    assert sorted(batch.jobs.values_list("attempts", flat=True)) == attempts


# --- concurrency: what is in flight ----------------------------------------------------------


def test_a_batch_sends_only_concurrency_jobs_at_first(
    db, library, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        batch = start_batch(
            GenerationParams(examples_per_category=4, concurrency=2, **EASY), library=library
        )
    first_two = list(batch.jobs.order_by("id").values_list("pk", flat=True)[:2])
    assert sent == first_two
    assert batch.jobs.filter(progress__has_key=SENT).count() == 2


def test_each_job_that_finishes_sends_the_next(
    db, library, sent, django_capture_on_commit_callbacks
):
    batch = start_batch(
        GenerationParams(examples_per_category=4, concurrency=2, **EASY), library=library
    )
    first, second, third, fourth = batch.jobs.order_by("id")
    first.acquire("worker")
    first.finish()
    with django_capture_on_commit_callbacks(execute=True):
        BatchRules().finished(first)
    assert sent == [third.pk]
    with django_capture_on_commit_callbacks(execute=True):
        BatchRules().finished(first)  # a second call (a redelivery) finds no free slot
    assert sent == [third.pk]


def test_a_batch_with_queued_jobs_and_nothing_in_flight_sends_them_when_looked_at(
    db, library, sent, django_capture_on_commit_callbacks
):
    """A worker that died between finishing a job and sending the next leaves no slot taken:
    the next look at the batch (its page, `wait_for_batch`) sends the next jobs."""
    batch = start_batch(
        GenerationParams(examples_per_category=3, concurrency=2, **EASY), library=library
    )
    first, second, third = batch.jobs.order_by("id")
    for job in (first, second):
        job.acquire("worker")
        job.finish()
    with django_capture_on_commit_callbacks(execute=True):
        refresh_status(batch)
    assert sent == [third.pk]
    assert batch.is_active


def test_resuming_an_interrupted_batch_sends_its_queued_jobs_again_up_to_concurrency(
    db, library, sent, django_capture_on_commit_callbacks
):
    batch = start_batch(
        GenerationParams(examples_per_category=4, concurrency=2, **EASY), library=library
    )
    assert not can_resume(batch, library)  # its first two jobs are on their way
    long_ago = (timezone.now() - timedelta(hours=1)).isoformat()
    batch.jobs.filter(progress__has_key=SENT).update(progress={SENT: long_ago})
    assert can_resume(batch, library)
    with django_capture_on_commit_callbacks(execute=True):
        resume_batch(batch, library)
    assert sent == list(batch.jobs.order_by("id").values_list("pk", flat=True)[:2])
    assert not can_resume(batch, library)


def test_with_concurrency_2_never_more_than_2_sessions_of_a_batch_run_at_once(
    transactional_db, library
):
    """Four worker threads, a batch of four: two at a time, one more each time one ends."""
    batch = start_batch(
        GenerationParams(examples_per_category=4, concurrency=2, **EASY), library=library
    )
    with InProcessWorkers(4):
        stats = wait_for_batch(batch, poll_s=0.2, timeout_s=120)
    assert stats["by_status"] == {JobStatus.SUCCEEDED: 4}
    assert max_running_at_once(list(batch.jobs.all())) == 2


# --- the cost ceiling ---------------------------------------------------------------------------


def running_job(batch: GenerationBatch, pk: int) -> CollectionJob:
    job = CollectionJob.objects.select_related("task", "execution", "batch").get(pk=pk)
    job.acquire("worker")
    return job


def test_a_session_does_not_start_when_the_running_ones_budgets_would_pass_the_ceiling(
    db, library, sent
):
    params = GenerationParams(examples_per_category=3, concurrency=2, max_cost_usd=0.15, **EASY)
    batch = start_batch(params, library=library)
    first, second, third = batch.jobs.order_by("id").values_list("pk", flat=True)
    rules = BatchRules()
    assert rules.stop_reason(running_job(batch, first)) == ""  # $0.10 of $0.15
    # Nothing spent yet, but two sessions of up to $0.10 each could pass $0.15.
    reason = rules.stop_reason(running_job(batch, second))
    assert (
        reason == ceiling_reason(0.15, 0.0) == "stopped: cost ceiling $0.15 reached ($0.0000 spent)"
    )
    # The job not started yet is cancelled with the same reason; the batch keeps it.
    assert CollectionJob.objects.get(pk=third).status == JobStatus.CANCELLED
    assert CollectionJob.objects.get(pk=third).error == reason
    batch.refresh_from_db()
    assert batch.is_active and batch.error == reason


def test_a_job_with_its_own_budget_is_held_to_it(db, library, sent):
    params = GenerationParams(examples_per_category=2, concurrency=2, max_cost_usd=0.15, **EASY)
    batch = start_batch(params, library=library)
    first, second = batch.jobs.order_by("id")
    for job in (first, second):
        CollectionJob.objects.filter(pk=job.pk).update(spec=job.spec | {"max_cost_usd": 0.05})
    rules = BatchRules()
    assert rules.stop_reason(running_job(batch, first.pk)) == ""
    assert rules.stop_reason(running_job(batch, second.pk)) == ""  # 2 x $0.05 fit in $0.15


def test_the_cost_ceiling_stops_the_batch_before_passing_it_through_real_workers(
    transactional_db, library
):
    """Two at a time, four sessions of about $0.09 each under a $0.25 ceiling: the first two
    run ($0.20 of budgets), the third would pass it, so the batch stops there."""
    generator = BatchTrainingGenerator(library=library)
    stats: dict[str, Any] = asyncio.run(
        generator.generate_diverse_dataset(
            examples_per_category=4, concurrency=2, max_cost_usd=0.25, **EASY
        )
    )
    assert stats["by_status"] == {JobStatus.SUCCEEDED: 2, JobStatus.CANCELLED: 2}
    assert 0 < stats["total_cost_usd"] <= 0.25
    batch = GenerationBatch.objects.get(pk=stats["batch"])
    assert batch.status == JobStatus.CANCELLED
    assert batch.error == ceiling_reason(0.25, stats["total_cost_usd"]) == stats["reason"]
    cancelled = batch.jobs.filter(status=JobStatus.CANCELLED)
    assert {j.error.split(" (")[0] for j in cancelled} == {"stopped: cost ceiling $0.25 reached"}
    assert not cancelled.filter(execution__isnull=False).exists()  # none of them started


def test_the_generate_command_shows_progress_and_the_seeds_stats(transactional_db):
    out, err = StringIO(), StringIO()
    call_command(
        "generate",
        examples_per_category=1,
        categories="debugging,refactoring",
        concurrency=2,
        stdout=out,
        stderr=err,
    )
    text = out.getvalue()
    assert "2 sessions planned (seed " in text
    assert "2 examples" in text and "golden" in text
    assert "by_category: {" in text and "'debugging': 1" in text
    assert "session" in err.getvalue()  # tqdm's bar
