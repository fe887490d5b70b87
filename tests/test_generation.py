"""Batch generation over the template library, through real Redis and real workers."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from collection.jobs.batches import (
    BatchTrainingGenerator,
    GenerationParams,
    cancel_batch,
    plan,
    resume_batch,
    start_batch,
    wait_for_batch,
)
from collection.models import TEMPLATE_CATEGORIES, CollectionJob, Execution, JobStatus
from collection.task_templates import TaskTemplateLibrary
from tests.test_broker import start_worker, stop_worker
from trainingdash.broker import InProcessWorkers


@pytest.fixture(scope="module")
def library() -> TaskTemplateLibrary:
    return TaskTemplateLibrary.load([])


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
        examples_per_category=2,
        difficulties=["easy"],
        include_multi_agent=False,
        include_chains=False,
    )
    chosen = [library.get(p.template) for p in plan(params, library)]
    assert {t.difficulty for t in chosen} == {"easy"}
    assert "multi_agent" not in {t.category for t in chosen}
    assert "chain" not in {t.job_kind for t in chosen}


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

    with InProcessWorkers(2):
        resume_batch(batch, library)  # nothing left to do
        stats = wait_for_batch(batch, poll_s=0.5, timeout_s=60)
    assert CollectionJob.objects.filter(batch=batch).count() == 4
    assert Execution.objects.count() == 4
    assert sorted(batch.jobs.values_list("attempts", flat=True)) == attempts


def test_the_cost_ceiling_stops_sessions_that_have_not_started(transactional_db, library):
    params = GenerationParams(
        examples_per_category=3, categories=["debugging"], concurrency=1, max_cost_usd=0.0001
    )
    generator = BatchTrainingGenerator(library=library)
    import asyncio

    stats = asyncio.run(
        generator.generate_diverse_dataset(
            examples_per_category=3,
            include_chains=False,
            include_multi_agent=False,
            categories=["debugging"],
            concurrency=1,
            max_cost_usd=0.0001,
        )
    )
    assert params.max_cost_usd == 0.0001
    assert stats["by_status"].get(JobStatus.SUCCEEDED) == 1
    assert stats["by_status"].get(JobStatus.CANCELLED) == 2
    reasons = {f["reason"] for f in stats["failures"]}
    assert "batch cost ceiling $0.0001 reached" in reasons


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
    assert "2 sessions planned" in text
    assert "2 examples" in text and "golden" in text
    assert "by_category: {" in text and "'debugging': 1" in text
    assert "session" in err.getvalue()  # tqdm's bar
