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
