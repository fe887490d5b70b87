"""Full-text search of examples (collection.search), on whichever database the run uses."""

from __future__ import annotations

import pytest

from collection.lifecycle import Outcome, finish, open_execution
from collection.models import Source, TaskStatus, TrainingExample
from collection.queries import Cursor, ExampleFilters, filter_examples, page_examples
from collection.search import SEARCH_TEXT_CHARS, build_search_text, index_example, parse, reindex
from tests.factories import make_example, make_execution, make_task

pytestmark = pytest.mark.django_db


def _session(
    prompt: str, *answers: str, tool_output: str = "", name: str = "Fix it"
) -> TrainingExample:
    """An example whose trajectory has the prompt, the assistant's answers and a tool result."""
    execution = make_execution(
        make_task(name=name), session_id=prompt[:20], metadata={"prompt": prompt}
    )
    execution.append_message({"type": "user", "message": {"content": prompt}})
    for n, text in enumerate(answers):
        content = [
            {"type": "text", "text": text},
            {"type": "tool_use", "name": "Bash", "input": {}},
        ]
        execution.append_message(
            {"type": "assistant", "uuid": f"a{n}", "message": {"content": content}}
        )
    result = [{"type": "tool_result", "tool_use_id": "t", "content": tool_output}]
    execution.append_message({"type": "user", "uuid": "r", "message": {"content": result}})
    example = make_example(execution)
    index_example(example)
    return example


def _found(text: str, **filters: object) -> list[int]:
    return [e.pk for e in filter_examples({"q": text, **filters})]


def test_search_text_holds_the_task_prompt_and_answers_but_not_tool_output():
    example = _session(
        "Make the parser accept tabs", "The tokenizer was failing", tool_output="SECRET-OUTPUT"
    )
    assert example.search_text.splitlines() == [
        "Fix it",
        "Make the parser accept tabs",
        "The tokenizer was failing",
    ]
    long = build_search_text(
        "t", "p", [{"type": "assistant", "message": {"content": "x" * 50_000}}]
    )
    assert len(long) == SEARCH_TEXT_CHARS


def test_finishing_a_session_indexes_its_example():
    execution = open_execution(make_task(), source=Source.SCRIPTED, prompt="rename the widget")
    execution.append_message(
        {
            "type": "assistant",
            "uuid": "a",
            "message": {"content": [{"type": "text", "text": "Renamed gizmo"}]},
        }
    )
    example = finish(execution, Outcome(TaskStatus.COMPLETED, True))
    assert example is not None
    assert "rename the widget" in example.search_text
    assert _found("gizmo") == [example.pk]


def test_search_finds_words_in_prompts_and_in_assistant_output_with_stemming():
    prompt = _session("Make the parser accept tabs", "Done")
    answer = _session("Something else", "The cache was failing under load")
    _session("Unrelated", "Nothing here", tool_output="parser cache in a tool result")
    assert _found("parser") == [prompt.pk]
    assert _found("fails") == [answer.pk]  # "failing" and "fails" share a stem
    assert _found("cache load") == [answer.pk]  # every word must be there
    assert _found("cache parser") == []


def test_a_better_match_comes_first_unless_a_sort_is_asked():
    once = _session("flaky test once", "ok")
    thrice = _session("flaky flaky flaky test", "flaky again")
    TrainingExample.objects.filter(pk=once.pk).update(quality_score=0.9)
    assert _found("flaky") == [thrice.pk, once.pk]
    assert _found("flaky", sort="-quality") == [once.pk, thrice.pk]
    page = page_examples(ExampleFilters(q="flaky"), size=1)
    assert page.ranked and [e.pk for e in page.rows] == [thrice.pk]
    following = page_examples(ExampleFilters(q="flaky"), Cursor(after=thrice.pk), size=1)
    assert [e.pk for e in following.rows] == [once.pk] and not following.has_next


def test_phrases_exclusions_and_or():
    near = _session("the queue worker died", "restarted")
    apart = _session("the worker saw the queue", "fine")
    assert _found('"queue worker"') == [near.pk]
    assert sorted(_found("queue -died")) == [apart.pk]
    assert sorted(_found("restarted OR fine")) == sorted([near.pk, apart.pk])


def test_search_combines_with_the_other_filters():
    hard = _session("tune the index", "done", name="Hard one")
    _session("tune the index", "done", name="Easy one")
    hard.execution.task.__class__.objects.filter(pk=hard.execution.task_id).update(
        difficulty="hard"
    )
    assert _found("index", difficulty="hard") == [hard.pk]


HOSTILE = [
    '"foo',
    "a AND",
    "OR foo",
    "foo OR",
    "NOT foo",
    "foo*",
    "(foo",
    "foo)",
    "col:foo",
    "^foo",
    "foo NEAR(bar)",
    "'; DROP TABLE x; --",
    "foo & | ! bar",
    '"" foo',
    "---foo",
    "AND OR NOT",
]


@pytest.mark.parametrize("typed", HOSTILE)
def test_hostile_search_syntax_is_read_as_words_and_answers_200(client, viewer, typed):
    _session("foo bar and or not col near drop table", "x")
    client.force_login(viewer)
    assert client.get("/examples/", {"q": typed}).status_code == 200


@pytest.mark.parametrize("typed", ["-", "\\", '""', "*", "()"])
def test_a_search_without_a_word_is_a_400_that_says_so(client, viewer, typed):
    client.force_login(viewer)
    response = client.get("/examples/", {"q": typed})
    assert response.status_code == 400
    assert b"q: Value error, search for at least one word" in response.content


def test_foo_with_an_unclosed_quote_still_finds_foo():
    example = _session("foo appears here", "x")
    assert _found('"foo') == [example.pk]
    assert _found("foo OR") == [example.pk]


def test_a_search_without_any_word_is_refused_with_a_message():
    with pytest.raises(ValueError, match="search for at least one word"):
        ExampleFilters.from_query({"q": '"" -- ()'})
    assert parse("-only -exclusions") and not any(t.excluded for t in parse("-only -exclusions"))


def test_reindexing_replaces_the_old_words_and_deleting_forgets_them():
    example = _session("alpha words", "x")
    TrainingExample.objects.filter(pk=example.pk).update(search_text="")
    execution = example.execution
    execution.metadata = {"prompt": "omega words"}
    execution.save()
    execution.messages.filter(type="user").delete()
    assert reindex(TrainingExample.objects.all(), batch_size=1) == 1
    assert _found("omega") == [example.pk]
    assert _found("alpha") == []
    example.delete()
    assert _found("omega") == []


def test_a_golden_ruling_does_not_touch_the_search_index(django_assert_max_num_queries):
    example = _session("kept words", "x")
    with django_assert_max_num_queries(1):
        TrainingExample.objects.filter(pk=example.pk).update(is_golden=True)
    assert _found("kept") == [example.pk]
