"""Reviewer rulings (the page's and the admin's) and why rescoring never overturns them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Event

import pytest
from django.db import connection

from collection.models import TrainingExample
from collection.review import review_example, set_golden
from collection.scoring import rescore
from tests.factories import make_example, make_execution, make_tool_call

WAIT = 30  # seconds a thread waits for the other before the test fails

pytestmark = pytest.mark.django_db


def low() -> TrainingExample:
    """An example the default scorer rates well below golden."""
    return make_example(make_execution(success=False, num_turns=40), quality_score=0.2)


def high() -> TrainingExample:
    """An example the default scorer rates golden: a verified fix that used the task's tools."""
    execution = make_execution()
    for n, name in enumerate(["Read", "Edit", "Bash"]):
        make_tool_call(execution, n, name=name)
    return make_example(execution, quality_score=0.9, is_golden=True)


def test_a_review_records_the_ruling_and_who_made_it(reviewer):
    example = review_example(
        low(), reviewer, is_golden=True, validated=True, validator_notes="ok", tags=["b", "a", "b"]
    )
    stored = TrainingExample.objects.get(pk=example.pk)
    assert (stored.is_golden, stored.validated, stored.tags) == (True, True, ["a", "b"])
    assert stored.reviewer == reviewer and stored.reviewed_at == example.reviewed_at


def test_a_review_leaves_a_newer_quality_score_alone(reviewer):
    example = low()
    TrainingExample.objects.filter(pk=example.pk).update(quality_score=0.7)  # a rescore, meanwhile
    review_example(example, reviewer, is_golden=False, validated=False, validator_notes="", tags=[])
    assert TrainingExample.objects.get(pk=example.pk).quality_score == 0.7


def test_set_golden_rules_on_many_examples_in_one_update(reviewer, django_assert_num_queries):
    examples = [low(), low(), low()]
    chosen = TrainingExample.objects.filter(pk__in=[e.pk for e in examples[:2]])
    with django_assert_num_queries(1):
        assert set_golden(chosen, reviewer, golden=True) == 2
    rows = TrainingExample.objects.order_by("pk").values_list("is_golden", "reviewer")
    assert list(rows) == [(True, reviewer.pk), (True, reviewer.pk), (False, None)]


def test_set_golden_takes_ids_too(reviewer):
    example = high()
    assert set_golden([example.pk], reviewer, golden=False) == 1
    example.refresh_from_db()
    assert not example.is_golden and example.reviewed_at is not None


def admin_action(client, action: str, examples: list[TrainingExample]):
    pks = [e.pk for e in examples]
    return client.post(
        "/admin/collection/trainingexample/", {"action": action, "_selected_action": pks}
    )


def test_marked_golden_in_the_admin_stays_golden_after_a_rescore(client, admin_user):
    examples = [low(), low()]
    client.force_login(admin_user)
    assert admin_action(client, "mark_golden", examples).status_code == 302
    assert rescore(TrainingExample.objects.all()) == 2
    rows = TrainingExample.objects.values_list("is_golden", "reviewer")
    assert list(rows) == [(True, admin_user.pk)] * 2
    assert max(TrainingExample.objects.values_list("quality_score", flat=True)) < 0.8


def test_unmarked_in_the_admin_stays_not_golden_after_a_rescore(client, admin_user):
    examples = [high(), high()]
    client.force_login(admin_user)
    assert admin_action(client, "unmark_golden", examples).status_code == 302
    assert rescore(TrainingExample.objects.all()) == 2
    rows = TrainingExample.objects.values_list("is_golden", "reviewer")
    assert list(rows) == [(False, admin_user.pk)] * 2
    assert min(TrainingExample.objects.values_list("quality_score", flat=True)) >= 0.8


def test_unreviewed_examples_still_follow_their_score_on_rescore():
    example = low()
    TrainingExample.objects.filter(pk=example.pk).update(is_golden=True)
    rescore(TrainingExample.objects.all())
    example.refresh_from_db()
    assert not example.is_golden


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_not_golden_rulings_made_during_a_rescore_all_survive(reviewer):
    examples = [make_example(make_execution(session_id=f"s-{n}")) for n in range(8)]
    written, read_only = examples[:4], examples[4:]
    halfway, ruled = Event(), Event()
    calls = []

    def scorer(execution) -> float:
        calls.append(execution)
        if len(calls) == 5:
            # The rescore has written (and locked) rows 1-4 and read rows 5-8 as not reviewed.
            halfway.set()
            assert ruled.wait(WAIT), "the reviewer never ruled"
        return 1.0  # golden, unless a reviewer said otherwise

    def rescoring() -> int:
        try:
            return rescore(TrainingExample.objects.order_by("pk"), scorer)
        finally:
            connection.close()

    def rule(example: TrainingExample) -> None:
        review_example(
            example, reviewer, is_golden=False, validated=True, validator_notes="no", tags=[]
        )

    def reviewing() -> None:
        try:
            assert halfway.wait(WAIT), "the rescore never got halfway"
            for example in read_only:  # rows the rescore read before the ruling
                rule(example)
            ruled.set()
            for example in written:  # rows the rescore holds: these wait for its commit
                rule(example)
        finally:
            ruled.set()
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        rescored, reviewed = pool.submit(rescoring), pool.submit(reviewing)
        assert rescored.result(timeout=2 * WAIT) == 8
        reviewed.result(timeout=2 * WAIT)
    rows = TrainingExample.objects.values_list("is_golden", "quality_score", "reviewer")
    assert sorted(rows) == [(False, 1.0, reviewer.pk)] * 8
