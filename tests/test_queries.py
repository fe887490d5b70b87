from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone
from pydantic import ValidationError

from collection.models import Execution, Message, StepMark, TrainingExample
from collection.queries import SORTS, Cursor, ExampleFilters, filter_examples, page_examples
from tests.factories import make_example, make_execution, make_task, make_tool_call


@pytest.mark.django_db
def test_the_duplicates_filter_includes_leaves_out_or_keeps_only_duplicates():
    task = make_task()
    original = make_example(make_execution(task), fingerprint="f" * 64)
    duplicate = make_example(make_execution(task), fingerprint="f" * 64, duplicate_of=original)
    other = make_example(make_execution(task))

    def found(**filters: str) -> set[int]:
        return set(filter_examples(filters).values_list("pk", flat=True))

    assert found() == {original.pk, duplicate.pk, other.pk}
    assert found(duplicates="include") == {original.pk, duplicate.pk, other.pk}
    assert found(duplicates="exclude") == {original.pk, other.pk}
    assert found(duplicates="only") == {duplicate.pk}


def test_the_duplicates_filter_reads_from_a_query_and_refuses_other_values():
    assert ExampleFilters.from_query({"duplicates": "exclude"}).duplicates == "exclude"
    assert ExampleFilters.from_query({"duplicates": ""}).duplicates == "include"
    with pytest.raises(ValidationError, match="duplicates"):
        ExampleFilters.from_query({"duplicates": "maybe"})


@pytest.mark.django_db
def test_the_tag_filter_matches_whole_tags_in_the_database(django_assert_num_queries):
    tagged = make_example(make_execution(session_id="a"), tags=["edge-case", "naïve"])
    make_example(make_execution(session_id="b"), tags=["edge"])
    make_example(make_execution(session_id="c"), tags=[])
    with django_assert_num_queries(1):  # one query: no rows read into Python to match tags
        assert [e.pk for e in filter_examples({"tag": "edge-case"})] == [tagged.pk]
    assert [e.pk for e in filter_examples({"tag": "naïve"})] == [tagged.pk]
    assert list(filter_examples({"tag": "edge-"})) == []  # a whole tag, not a substring


@pytest.mark.django_db
def test_the_list_sorts_by_a_named_column_either_way():
    task = make_task()
    cheap = make_example(make_execution(task, session_id="a", cost_usd=0.01), quality_score=0.9)
    dear = make_example(make_execution(task, session_id="b", cost_usd=0.50), quality_score=0.4)
    assert list(filter_examples({"sort": "cost"})) == [cheap, dear]
    assert list(filter_examples({"sort": "-cost"})) == [dear, cheap]
    assert list(filter_examples({"sort": "quality"})) == [dear, cheap]


def test_an_unknown_sort_is_refused_naming_the_choices():
    with pytest.raises(ValidationError, match="unknown sort 'colour'; choose one of task, "):
        ExampleFilters.from_query({"sort": "colour"})


# --- every filter, every sort, keyset pages ------------------------------------------------------


def _pair(hit: dict, miss: dict) -> tuple[TrainingExample, TrainingExample]:
    """Two examples differing only in what the filter under test looks at."""
    made = []
    for n, fields in enumerate((hit, miss)):
        task = make_task(**fields.get("task", {}))
        execution = make_execution(task, session_id=f"s{n}", **fields.get("execution", {}))
        made.append(make_example(execution, **fields.get("example", {})))
    return made[0], made[1]


FILTER_CASES = {
    "min_quality": ({"example": {"quality_score": 0.9}}, {"example": {"quality_score": 0.2}}, 0.5),
    "max_quality": ({"example": {"quality_score": 0.2}}, {"example": {"quality_score": 0.9}}, 0.5),
    "category": ({"task": {"category": "testing"}}, {"task": {"category": "debugging"}}, "testing"),
    "difficulty": ({"task": {"difficulty": "hard"}}, {"task": {"difficulty": "easy"}}, "hard"),
    "is_golden": ({"example": {"is_golden": True}}, {}, True),
    "validated": ({"example": {"validated": True}}, {}, True),
    "status": ({"execution": {"status": "failed"}}, {}, "failed"),
    "source": ({"execution": {"source": "imported"}}, {}, "imported"),
    "model": ({"execution": {"model": "opus"}}, {"execution": {"model": "haiku"}}, "opus"),
    "min_cost": ({"execution": {"cost_usd": 0.5}}, {"execution": {"cost_usd": 0.1}}, 0.3),
    "max_cost": ({"execution": {"cost_usd": 0.1}}, {"execution": {"cost_usd": 0.5}}, 0.3),
    "min_turns": ({"execution": {"num_turns": 30}}, {"execution": {"num_turns": 3}}, 10),
    "max_turns": ({"execution": {"num_turns": 3}}, {"execution": {"num_turns": 30}}, 10),
    "tag": ({"example": {"tags": ["flaky"]}}, {"example": {"tags": ["slow"]}}, "flaky"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("name", FILTER_CASES)
def test_each_filter_keeps_the_matching_example_and_leaves_the_other(name):
    hit_fields, miss_fields, value = FILTER_CASES[name]
    hit, _miss = _pair(hit_fields, miss_fields)
    assert [e.pk for e in filter_examples({name: value})] == [hit.pk]


@pytest.mark.django_db
def test_the_tool_filters_find_sessions_that_called_or_failed_a_tool():
    grep_ok, bash_failed = _pair({}, {})
    make_tool_call(grep_ok.execution, 1, name="Grep")
    make_tool_call(bash_failed.execution, 1, name="Bash", is_error=True)
    make_tool_call(bash_failed.execution, 2, name="Grep")

    def found(**filters: str) -> set[int]:
        return set(filter_examples(filters).values_list("pk", flat=True))

    assert found(tool="Grep") == {grep_ok.pk, bash_failed.pk}
    assert found(tool="Bash") == {bash_failed.pk}
    assert found(tool_error="Bash") == {bash_failed.pk}
    assert found(tool_error="Grep") == set()
    assert found(tool_error="any") == {bash_failed.pk}


@pytest.mark.django_db
def test_the_reviewer_and_bad_step_filters(reviewer):
    reviewed, other = _pair({}, {})
    TrainingExample.objects.filter(pk=reviewed.pk).update(reviewer=reviewer)
    message, _ = other.execution.append_message({"type": "assistant", "uuid": "m1"})
    StepMark.objects.create(example=other, message=Message.objects.get(pk=message.pk))
    assert [e.pk for e in filter_examples({"reviewer": "bob"})] == [reviewed.pk]
    assert [e.pk for e in filter_examples({"bad_steps": True})] == [other.pk]
    assert [e.pk for e in filter_examples({"bad_steps": False})] == [reviewed.pk]
    assert list(filter_examples({"reviewer": "nobody"})) == []
    assert User.objects.filter(username="bob").exists()


@pytest.mark.django_db
def test_the_date_range_covers_whole_days():
    old, new = _pair({}, {})
    now = timezone.now()
    TrainingExample.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=10))
    today = timezone.localdate()
    assert [e.pk for e in filter_examples({"created_from": today})] == [new.pk]
    assert [e.pk for e in filter_examples({"created_to": today - timedelta(days=5)})] == [old.pk]
    both = filter_examples({"created_from": today - timedelta(days=10), "created_to": today})
    assert {e.pk for e in both} == {old.pk, new.pk}


def test_a_range_upside_down_is_refused_naming_both_ends():
    with pytest.raises(ValidationError, match="min_cost is above max_cost"):
        ExampleFilters.from_query({"min_cost": "2", "max_cost": "1"})
    with pytest.raises(ValidationError, match="created_from is above created_to"):
        ExampleFilters(created_from=date(2025, 2, 1), created_to=date(2025, 1, 1))


# sort name -> (field values of three examples, smallest first)
SORT_VALUES = {
    "task": ("task", "name", ["Alpha", "Beta", "Gamma"]),
    "category": ("task", "category", ["debugging", "refactoring", "testing"]),
    "difficulty": ("task", "difficulty", ["easy", "hard", "medium"]),
    "status": ("execution", "status", ["cancelled", "completed", "failed"]),
    "quality": ("example", "quality_score", [0.1, 0.5, 0.9]),
    "golden": ("example", "is_golden", [False, False, True]),
    "validated": ("example", "validated", [False, True, True]),
    "cost": ("execution", "cost_usd", [0.01, 0.2, 3.0]),
    "turns": ("execution", "num_turns", [1, 7, 40]),
    "model": ("execution", "model", ["a-model", "b-model", "c-model"]),
    "created": ("example", "created_at", None),
}


@pytest.mark.django_db
@pytest.mark.parametrize("name", [n for n in SORTS if n != "relevance"])
def test_every_sort_orders_the_list_both_ways_with_ties_broken_by_id(name):
    where, field, values = SORT_VALUES[name]
    made = []
    for n, value in enumerate(values or [None] * 3):
        fields = {where: {field: value}} if value is not None else {}
        task = make_task(**fields.get("task", {}))
        execution = make_execution(task, session_id=f"s{n}", **fields.get("execution", {}))
        made.append(make_example(execution, **fields.get("example", {})).pk)
    ascending = [e.pk for e in filter_examples({"sort": name})]
    descending = [e.pk for e in filter_examples({"sort": f"-{name}"})]
    assert ascending == made  # values ascend with creation; equal values tie-break on the id
    assert descending == made[::-1]


@pytest.mark.django_db
@pytest.mark.parametrize("sort", [None, "cost", "-task", "golden"])
def test_keyset_pages_walk_the_whole_order_forwards_backwards_and_from_the_end(sort):
    task_names = ["B", "A", "C"]
    for n in range(8):
        execution = make_execution(
            make_task(name=task_names[n % 3]), session_id=f"s{n}", cost_usd=(n % 4) / 10
        )
        make_example(execution, quality_score=(n % 3) / 3, is_golden=n % 2 == 0)
    filters = ExampleFilters(sort=sort)
    everything = [e.pk for e in filter_examples(filters)]

    first = page_examples(filters, size=3)
    assert [e.pk for e in first.rows] == everything[:3]
    assert (first.has_previous, first.has_next, first.count) == (False, True, 8)
    second = page_examples(filters, Cursor(after=first.last_id), size=3)
    assert [e.pk for e in second.rows] == everything[3:6]
    third = page_examples(filters, Cursor(after=second.last_id), size=3)
    assert [e.pk for e in third.rows] == everything[6:]
    assert (third.has_previous, third.has_next) == (True, False)
    back = page_examples(filters, Cursor(before=third.first_id), size=3)
    assert [e.pk for e in back.rows] == everything[3:6]
    assert (back.has_previous, back.has_next) == (True, True)
    last = page_examples(filters, Cursor(last=True), size=3)
    assert [e.pk for e in last.rows] == everything[-3:]
    assert (last.has_previous, last.has_next) == (True, False)


@pytest.mark.django_db
def test_a_filtered_count_stops_at_the_limit_and_says_so(monkeypatch):
    monkeypatch.setattr("collection.queries.COUNT_LIMIT", 3)
    task = make_task(category="testing")
    for n in range(5):
        make_example(make_execution(task, session_id=f"s{n}"))
    page = page_examples(ExampleFilters(category="testing"), size=2)
    assert (page.count, page.count_capped, page.count_label) == (4, True, "3+")
    whole = page_examples(ExampleFilters(), size=2)  # unfiltered: counted exactly
    assert (whole.count, whole.count_capped, whole.count_label) == (5, False, "5")


@pytest.mark.django_db
def test_an_unfiltered_list_of_a_big_table_shows_the_databases_estimate(monkeypatch):
    monkeypatch.setattr("collection.queries.ESTIMATE_FROM", 3)
    for n in range(4):
        make_example(make_execution(session_id=f"s{n}"))
    whole = page_examples(ExampleFilters(), size=2)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # the statistics autovacuum would have by now
            cursor.execute("ANALYZE collection_trainingexample")
        whole = page_examples(ExampleFilters(), size=2)
        assert (whole.count, whole.estimated, whole.count_label) == (4, True, "about 4")
    else:  # SQLite keeps no row estimate: its count is exact (and cheap, from an index)
        assert (whole.count, whole.estimated, whole.count_label) == (4, False, "4")
    filtered = page_examples(ExampleFilters(min_quality=0), size=2)
    assert (filtered.count, filtered.estimated) == (4, False)  # a filter is counted


@pytest.mark.django_db
def test_the_category_the_list_filters_on_follows_the_task_whoever_writes():
    debugging, testing = make_task(category="debugging"), make_task(category="testing")
    saved = make_example(make_execution(debugging))
    bulk = TrainingExample.objects.bulk_create(
        [TrainingExample(execution=make_execution(debugging, session_id="b"))]
    )[0]
    moved = make_example(make_execution(debugging, session_id="m"))

    def found(category: str) -> set[int]:
        return set(filter_examples({"category": category}).values_list("pk", flat=True))

    assert found("debugging") == {saved.pk, bulk.pk, moved.pk}
    Execution.objects.filter(pk=moved.execution_id).update(task=testing)  # re-categorised import
    assert found("testing") == {moved.pk}
    testing.category = "refactoring"
    testing.save()  # a task's category edited
    assert found("refactoring") == {moved.pk} and found("testing") == set()
    saved.category = "not-a-category"  # the application's value never counts
    saved.save()
    assert TrainingExample.objects.get(pk=saved.pk).category == "debugging"
