"""The admin: review actions go through collection.review and leave its record; big change
lists run a constant number of queries however many rows they show."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from collection.models import (
    AgentAction,
    Execution,
    Message,
    ReviewEvent,
    Task,
    ToolCall,
    TrainingExample,
)
from collection.review import review_example, set_validated

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/collection/trainingexample/"


def many(n: int, **kw) -> list[TrainingExample]:
    """n examples, each with an execution, a message, a tool call and an action."""
    task = Task.objects.create(name=f"Task {n}", category="debugging", difficulty="easy")
    executions = Execution.objects.bulk_create(
        Execution(task=task, session_id=f"s-{n}-{i}", usage={"big": "x" * 1000}) for i in range(n)
    )
    Message.objects.bulk_create(
        Message(execution=e, seq=1, uuid="m", type="assistant", payload={}) for e in executions
    )
    ToolCall.objects.bulk_create(
        ToolCall(execution=e, tool_use_id="t", name="Bash") for e in executions
    )
    AgentAction.objects.bulk_create(
        AgentAction(execution=e, agent_id="a", action_type="tool_use") for e in executions
    )
    return TrainingExample.objects.bulk_create(
        TrainingExample(execution=e, quality_score=0.5, **kw) for e in executions
    )


def act(client, action: str, examples: list[TrainingExample], **extra):
    data = {"action": action, "_selected_action": [e.pk for e in examples]} | extra
    return client.post(CHANGELIST, data, follow=True)


@pytest.mark.parametrize(
    ("action", "field", "before", "after", "said"),
    [
        ("mark_golden", "is_golden", False, True, "Marked 3 examples golden."),
        ("mark_validated", "validated", False, True, "Marked 3 examples validated."),
    ],
)
def test_a_ruling_action_leaves_one_review_event_per_example(
    client, admin_user, action, field, before, after, said
):
    examples = many(3)
    client.force_login(admin_user)
    page = act(client, action, examples)
    assert said in page.content.decode()
    rows = ReviewEvent.objects.values_list("example", "field", "before", "after", "user", "via")
    assert sorted(rows) == [(e.pk, field, before, after, admin_user.pk, "admin") for e in examples]


def test_unmark_actions_record_only_the_examples_they_change(client, admin_user):
    golden, plain = many(2, is_golden=True, validated=True), many(1)
    client.force_login(admin_user)
    act(client, "unmark_golden", golden + plain)
    act(client, "unmark_validated", golden + plain)
    rows = ReviewEvent.objects.values_list("example", "field", "after")
    assert sorted(rows) == sorted(
        [(e.pk, f, False) for e in golden for f in ("is_golden", "validated")]
    )
    assert TrainingExample.objects.filter(reviewer=admin_user).count() == 3


def test_tag_actions_take_the_tags_from_the_action_bar(client, admin_user):
    examples = many(2, tags=["old"])
    client.force_login(admin_user)
    page = act(client, "add_tags", examples, tags="flaky, needs-look")
    assert "Tagged 2 examples with flaky, needs-look." in page.content.decode()
    page = act(client, "remove_tags", examples[:1], tags="old")
    assert "Removed old from 1 examples." in page.content.decode()
    rows = dict(TrainingExample.objects.values_list("pk", "tags"))
    assert rows == {
        examples[0].pk: ["flaky", "needs-look"],
        examples[1].pk: ["flaky", "needs-look", "old"],
    }
    assert ReviewEvent.objects.filter(field="tags", via="admin").count() == 3


def test_a_tag_action_without_tags_changes_nothing_and_says_why(client, admin_user):
    examples = many(2)
    client.force_login(admin_user)
    page = act(client, "add_tags", examples, tags=" , ")
    assert "Nothing changed: name at least one tag." in page.content.decode()
    assert not ReviewEvent.objects.exists()


def test_an_action_over_the_whole_filtered_result_reaches_every_row(client, admin_user):
    many(30)
    many(5, validated=True)
    client.force_login(admin_user)
    data = {"action": "mark_golden", "select_across": "1", "_selected_action": ["0"]}
    client.post(CHANGELIST + "?validated__exact=0", data, follow=True)
    assert TrainingExample.objects.filter(is_golden=True).count() == 30
    assert ReviewEvent.objects.count() == 30


def test_the_example_page_shows_its_review_history_read_only(client, admin_user, reviewer):
    [example] = many(1)
    review_example(
        example, reviewer, is_golden=True, validated=False, validator_notes="<b>ok</b>", tags=[]
    )
    client.force_login(admin_user)
    page = client.get(f"{CHANGELIST}{example.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200 and "review history" in html.lower()
    assert "&lt;b&gt;ok&lt;/b&gt;" in html and "<b>ok</b>" not in html
    assert 'name="is_golden"' not in html and 'name="review_events-0-field"' not in html


def queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize(
    "url",
    [
        CHANGELIST,
        CHANGELIST + "?validated__exact=1",
        CHANGELIST + "?category=debugging&o=3",
        "/admin/collection/execution/",
        "/admin/collection/execution/?category=debugging",
        "/admin/collection/message/",
        "/admin/collection/toolcall/",
        "/admin/collection/agentaction/",
    ],
)
def test_a_change_list_runs_as_many_queries_for_80_rows_as_for_2(
    client, admin_user, reviewer, url, django_assert_max_num_queries
):
    many(2)
    set_validated(TrainingExample.objects.all(), reviewer, True)  # a reviewer on every row
    client.force_login(admin_user)
    few = queries(client, url)
    many(78)
    set_validated(TrainingExample.objects.all(), reviewer, True)
    with django_assert_max_num_queries(few):
        assert client.get(url).status_code == 200
    assert few <= 10, few
