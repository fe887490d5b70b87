"""Reviewer rulings (the page's and the admin's) and why rescoring never overturns them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Event

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from collection.models import Execution, Message, ReviewEvent, StepMark, Task, TrainingExample
from collection.queries import filter_examples
from collection.review import (
    ReviewError,
    add_tags,
    history,
    mark_step,
    override_quality,
    remove_tags,
    review_example,
    set_golden,
    set_validated,
    unmark_step,
)
from collection.scoring import apply_score, rescore
from tests.factories import make_example, make_execution, make_task, make_tool_call

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


def test_set_golden_rules_on_the_chosen_examples_only(reviewer):
    examples = [low(), low(), low()]
    chosen = TrainingExample.objects.filter(pk__in=[e.pk for e in examples[:2]])
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


# --- what is recorded ---------------------------------------------------------------------------


def ruling(**kw) -> dict:
    return {"is_golden": False, "validated": False, "validator_notes": "", "tags": []} | kw


def events(example: TrainingExample) -> list[tuple]:
    # By field, then in the order they happened (the id breaks ties the database may not).
    rows = ReviewEvent.objects.filter(example=example).order_by("field", "id")
    return list(rows.values_list("field", "before", "after", "user", "via"))


def test_each_changed_field_is_recorded_with_before_after_who_and_via(reviewer):
    example = low()
    review_example(
        example,
        reviewer,
        **ruling(is_golden=True, validator_notes="fine", tags=["b", "a"]),
        via="queue",
    )
    assert events(example) == [
        ("is_golden", False, True, reviewer.pk, "queue"),
        ("tags", [], ["a", "b"], reviewer.pk, "queue"),
        ("validator_notes", "", "fine", reviewer.pk, "queue"),
    ]
    event = ReviewEvent.objects.filter(example=example).first()
    assert event.at == TrainingExample.objects.get(pk=example.pk).reviewed_at


def test_fields_left_as_they_were_record_nothing(reviewer):
    example = low()
    review_example(example, reviewer, **ruling(validated=True))
    review_example(example, reviewer, **ruling(validated=True))
    assert events(example) == [("validated", False, True, reviewer.pk, "page")]


def test_a_review_without_changes_still_marks_the_example_reviewed(reviewer):
    example = low()
    review_example(example, reviewer, **ruling())
    stored = TrainingExample.objects.get(pk=example.pk)
    assert stored.reviewed_at is not None and stored.reviewer == reviewer
    assert events(example) == []


def test_a_review_decides_from_the_row_as_it_is_now_not_the_callers_copy(reviewer, admin_user):
    stale = low()
    review_example(TrainingExample.objects.get(pk=stale.pk), admin_user, **ruling(is_golden=True))
    review_example(stale, reviewer, **ruling(is_golden=True, validated=True))
    # The second reviewer changed only `validated`: golden was already what they asked for.
    assert [e[:3] for e in events(stale)] == [
        ("is_golden", False, True),
        ("validated", False, True),
    ]


def test_an_unknown_via_is_refused(reviewer):
    with pytest.raises(ReviewError, match="unknown via 'email'"):
        review_example(low(), reviewer, **ruling(), via="email")


# --- quality override -----------------------------------------------------------------------------


def test_an_override_is_the_quality_score_and_its_reason_is_recorded(reviewer):
    example = apply_score(low())
    scored = example.quality_score
    override_quality(example, reviewer, 0.95, "the verifier was wrong", via="page")
    stored = TrainingExample.objects.get(pk=example.pk)
    assert (stored.quality_score, stored.quality_override, stored.scored_quality) == (
        0.95,
        0.95,
        scored,
    )
    assert stored.quality_override_reason == "the verifier was wrong"
    assert stored.reviewer == reviewer
    event = ReviewEvent.objects.get(example=example)
    assert (event.field, event.before, event.after, event.reason) == (
        "quality_override",
        None,
        0.95,
        "the verifier was wrong",
    )


def test_an_override_survives_a_rescore_and_clearing_it_restores_the_scored_value(reviewer):
    example = apply_score(low())
    override_quality(example, reviewer, 0.9, "good enough")
    rescore(TrainingExample.objects.all(), lambda execution: 0.42)
    stored = TrainingExample.objects.get(pk=example.pk)
    assert (stored.quality_score, stored.scored_quality) == (0.9, 0.42)
    override_quality(stored, reviewer, None, "")
    stored.refresh_from_db()
    assert (stored.quality_score, stored.quality_override, stored.scored_quality) == (
        0.42,
        None,
        0.42,
    )
    assert stored.quality_override_reason == ""


def test_an_override_on_a_row_scored_before_overrides_existed_keeps_that_score(reviewer):
    example = low()  # quality_score 0.2, never through apply_score: no scored_quality
    override_quality(example, reviewer, 0.7, "manual")
    override_quality(example, reviewer, None, "")
    stored = TrainingExample.objects.get(pk=example.pk)
    assert (stored.quality_score, stored.scored_quality) == (0.2, 0.2)


def test_the_review_form_sets_and_clears_the_override(reviewer):
    example = low()
    review_example(example, reviewer, **ruling(), quality_override=0.6, override_reason="why")
    assert TrainingExample.objects.get(pk=example.pk).quality_score == 0.6
    review_example(example, reviewer, **ruling(), quality_override=0.6, override_reason="because")
    review_example(example, reviewer, **ruling())
    assert TrainingExample.objects.get(pk=example.pk).quality_score == 0.2
    assert [e[:3] for e in events(example)] == [
        ("quality_override", None, 0.6),
        ("quality_override", 0.6, None),
        ("quality_override_reason", "why", "because"),
    ]


@pytest.mark.parametrize(
    ("value", "reason", "message"),
    [(0.5, " ", "needs a reason"), (1.5, "x", "from 0 to 1"), (-0.1, "x", "from 0 to 1")],
)
def test_an_override_out_of_range_or_without_a_reason_is_refused(reviewer, value, reason, message):
    example = low()
    with pytest.raises(ReviewError, match=message):
        override_quality(example, reviewer, value, reason)
    assert TrainingExample.objects.get(pk=example.pk).quality_override is None
    assert not ReviewEvent.objects.exists()


def test_a_rescore_on_a_stale_copy_keeps_an_override_made_since_it_was_read(reviewer):
    stale = low()
    override_quality(TrainingExample.objects.get(pk=stale.pk), reviewer, 0.33, "meh")
    scored = apply_score(stale, lambda execution: 1.0)
    assert (scored.quality_score, scored.scored_quality, scored.is_golden) == (0.33, 1.0, False)


# --- step marks -----------------------------------------------------------------------------------


def step(example: TrainingExample, seq: int = 1, type: str = "assistant") -> Message:
    return Message.objects.create(
        execution=example.execution, seq=seq, uuid=f"m-{seq}", type=type, payload={"type": type}
    )


def test_marking_a_step_records_it_and_a_new_comment_is_a_change(reviewer):
    example = low()
    message = step(example, seq=3)
    mark_step(example, message, reviewer, "edited the wrong file", via="queue")
    mark_step(example, message, reviewer, "edited the wrong file")  # the same: nothing new
    mark_step(example, message, reviewer, "wrong file")
    mark = StepMark.objects.get()
    assert (mark.message, mark.comment, mark.created_by) == (message, "wrong file", reviewer)
    rows = ReviewEvent.objects.order_by("id").values_list("field", "before", "after", "via")
    first = {"message": message.pk, "seq": 3, "comment": "edited the wrong file"}
    assert list(rows) == [
        ("bad_step", None, first, "queue"),
        ("bad_step", first, first | {"comment": "wrong file"}, "page"),
    ]
    assert TrainingExample.objects.get(pk=example.pk).reviewed_at is None  # a note, not a ruling


def test_unmarking_a_step_records_it_once(reviewer):
    example = low()
    message = step(example)
    mark_step(example, message, reviewer)
    assert unmark_step(example, message, reviewer) is True
    assert unmark_step(example, message, reviewer) is False
    assert not StepMark.objects.exists()
    after = ReviewEvent.objects.order_by("id").values_list("after", flat=True)
    assert list(after) == [{"message": message.pk, "seq": 1, "comment": ""}, None]


def test_only_an_assistant_step_of_the_examples_own_trajectory_can_be_marked(reviewer):
    example, other = low(), low()
    with pytest.raises(ReviewError, match="not an assistant step"):
        mark_step(example, step(other), reviewer)
    with pytest.raises(ReviewError, match="not an assistant step"):
        mark_step(example, step(example, type="user"), reviewer)
    assert not StepMark.objects.exists() and not ReviewEvent.objects.exists()


def test_the_history_reads_as_sentences(reviewer):
    example = low()
    message = step(example, seq=7)
    review_example(example, reviewer, **ruling(is_golden=True, tags=["x"]))
    mark_step(example, message, reviewer, "looped")
    lines = {(line.label, line.before, line.after) for line in history(example)}
    assert lines == {
        ("golden", "no", "yes"),
        ("tags", "no tags", "x"),
        ("bad step", "—", "step #7: looped"),
    }


# --- many examples --------------------------------------------------------------------------------


def many(n: int, **kw) -> list[TrainingExample]:
    """n examples in a few queries (one task, bulk-created executions and examples)."""
    task = Task.objects.first() or make_task()
    executions = Execution.objects.bulk_create(
        Execution(task=task, session_id=f"bulk-{n}-{i}", success=True) for i in range(n)
    )
    return TrainingExample.objects.bulk_create(
        TrainingExample(execution=e, quality_score=0.5, **kw) for e in executions
    )


def queries_for(fn) -> int:
    with CaptureQueriesContext(connection) as ctx:
        fn()
    return len(ctx.captured_queries)


def test_bulk_golden_records_one_event_per_changed_row(reviewer):
    already = many(3, is_golden=True)
    examples = many(40) + already
    assert set_golden([e.pk for e in examples], reviewer, True, via="admin") == 43
    assert ReviewEvent.objects.count() == 40
    assert set(ReviewEvent.objects.values_list("field", "before", "after", "user", "via")) == {
        ("is_golden", False, True, reviewer.pk, "admin")
    }
    assert not ReviewEvent.objects.filter(example__in=already).exists()
    assert TrainingExample.objects.filter(reviewer=reviewer, is_golden=True).count() == 43


@pytest.mark.parametrize(
    "action",
    [
        lambda qs, user: set_golden(qs, user, True),
        lambda qs, user: set_validated(qs, user, True),
        lambda qs, user: add_tags(qs, user, ["checked", "batch"]),
    ],
    ids=["golden", "validated", "tags"],
)
def test_a_bulk_change_runs_as_many_queries_for_100_rows_as_for_10(reviewer, action):
    many(10, tags=["a"])
    small = queries_for(lambda: action(TrainingExample.objects.filter(tags=["a"]), reviewer))
    many(100, tags=["b"])
    big = queries_for(lambda: action(TrainingExample.objects.filter(tags=["b"]), reviewer))
    assert small == big
    assert ReviewEvent.objects.count() == 110


def test_bulk_changes_take_the_lists_filtered_queryset(reviewer):
    many(5)
    many(3, validated=True)
    matches = filter_examples({"validated": False, "sort": "-quality"})
    assert set_validated(matches, reviewer, True, via="bulk") == 5
    assert TrainingExample.objects.filter(validated=True).count() == 8
    assert ReviewEvent.objects.filter(field="validated", via="bulk").count() == 5


def test_bulk_changes_cross_the_chunk_size(reviewer, monkeypatch):
    monkeypatch.setattr("collection.review.CHUNK", 7)
    many(30)
    assert add_tags(TrainingExample.objects.all(), reviewer, ["x"]) == 30
    assert set_golden(TrainingExample.objects.all(), reviewer, True) == 30
    assert ReviewEvent.objects.filter(field="tags").count() == 30
    assert ReviewEvent.objects.filter(field="is_golden").count() == 30
    assert set(map(tuple, TrainingExample.objects.values_list("tags", flat=True))) == {("x",)}


def test_tags_are_added_and_removed_in_bulk_with_their_before_and_after(reviewer):
    [tagged, plain] = many(1, tags=["keep", "old"]) + many(1)
    assert add_tags(TrainingExample.objects.all(), reviewer, [" new ", "keep"]) == 2
    assert remove_tags(TrainingExample.objects.all(), reviewer, ["old", "absent"]) == 1
    rows = dict(TrainingExample.objects.values_list("pk", "tags"))
    assert rows == {tagged.pk: ["keep", "new"], plain.pk: ["keep", "new"]}
    changes = ReviewEvent.objects.filter(example=tagged).order_by("id")
    assert list(changes.values_list("before", "after")) == [
        (["keep", "old"], ["keep", "new", "old"]),
        (["keep", "new", "old"], ["keep", "new"]),
    ]
    # Tags are notes, not rulings: rescoring still decides golden for these.
    assert TrainingExample.objects.filter(reviewed_at__isnull=False).count() == 0


def test_bulk_tagging_without_a_tag_is_refused(reviewer):
    many(2)
    with pytest.raises(ReviewError, match="at least one tag"):
        add_tags(TrainingExample.objects.all(), reviewer, [" ", ""])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_override_made_during_a_rescore_survives(reviewer):
    examples = [make_example(make_execution(session_id=f"o-{n}")) for n in range(4)]
    halfway, ruled = Event(), Event()
    calls = []

    def scorer(execution) -> float:
        calls.append(execution)
        if len(calls) == 3:  # rows 1-2 written and locked by the rescore, 3-4 read
            halfway.set()
            assert ruled.wait(WAIT), "the reviewer never ruled"
        return 1.0

    def rescoring() -> int:
        try:
            return rescore(TrainingExample.objects.order_by("pk"), scorer)
        finally:
            connection.close()

    def reviewing() -> None:
        try:
            assert halfway.wait(WAIT), "the rescore never got halfway"
            for example in examples[2:]:  # rows the rescore has read but not written yet
                override_quality(example, reviewer, 0.25, "poor")
            ruled.set()
            for example in examples[:2]:  # rows the rescore holds: these wait for its commit
                override_quality(example, reviewer, 0.25, "poor")
        finally:
            ruled.set()
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        rescored, reviewed = pool.submit(rescoring), pool.submit(reviewing)
        assert rescored.result(timeout=2 * WAIT) == 4
        reviewed.result(timeout=2 * WAIT)
    rows = TrainingExample.objects.values_list(
        "quality_score", "scored_quality", "quality_override"
    )
    assert sorted(rows) == [(0.25, 1.0, 0.25)] * 4
