from __future__ import annotations

import pytest
from pydantic import ValidationError

from collection.queries import ExampleFilters, filter_examples
from tests.factories import make_example, make_execution, make_task


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
