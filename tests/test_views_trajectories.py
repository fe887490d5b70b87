"""The trajectory pages: an example's, an execution's, a tool call's whole output and a
message's raw JSON, as full pages and as HTMX partials."""

from __future__ import annotations

import json
from html import unescape

import pytest
from django.test import Client
from django.urls import reverse

from collection.models import Execution, StepMark, TaskStatus, ToolCall
from tests.factories import (
    assistant_payload,
    make_example,
    make_execution,
    make_message,
    make_trajectory,
    result_payload,
    tool_use,
)

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def client_as(client: Client, viewer) -> Client:
    client.force_login(viewer)
    return client


def _long_output_call(execution: Execution) -> ToolCall:
    output = "\n".join(f"line {i}" for i in range(500))
    make_message(
        execution,
        assistant_payload([tool_use("toolu_long", "Bash", command="seq 500")], response="m1"),
    )
    call = ToolCall.objects.create(
        execution=execution, tool_use_id="toolu_long", name="Bash", input={"command": "seq 500"}
    )
    answer = make_message(execution, result_payload("toolu_long", output))
    call.result, call.is_error, call.answered_in = output, False, answer
    call.save()
    return call


def test_example_page_reads_as_a_conversation(client_as, db):
    example = make_example(make_trajectory(turns=2))
    response = client_as.get(reverse("collection-example-detail", args=[example.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Fix the tests" in html  # the prompt
    assert "<strong>case 1</strong>" in html  # assistant text as Markdown
    assert '<details class="thinking">' in html
    assert "pytest -k case_2" in html  # the Bash call's key argument
    assert "claude-sonnet-4-5 · 3 tools · /work/sandbox" in html  # the init line
    assert "pprint" not in html and "{&#x27;type&#x27;" not in html  # no payload dumps
    assert response.context["form"].initial["is_golden"] is False
    assert list(response.context["events"]) == []


def test_example_page_gives_each_assistant_step_an_anchor_and_its_mark(client_as, db):
    execution = make_trajectory(turns=2)
    example = make_example(execution)
    steps = list(execution.messages.filter(type="assistant").order_by("seq"))
    StepMark.objects.create(example=example, message=steps[0], comment="ran the wrong case")
    html = client_as.get(reverse("collection-example-detail", args=[example.pk])).content.decode()
    for step in steps:
        assert f'id="step-{step.pk}" data-step="{step.pk}"' in html
        assert f'id="step-mark-{step.pk}"' in html
    assert "ran the wrong case" in html


def test_the_example_page_runs_the_same_queries_for_3_turns_and_60(
    client_as, db, django_assert_max_num_queries
):
    small = make_example(make_trajectory(turns=3))
    big = make_example(make_trajectory(make_execution(session_id="big"), turns=60))
    url = "collection-example-detail"
    client_as.get(reverse(url, args=[small.pk]))  # warm the session and permission caches
    with django_assert_max_num_queries(12) as small_queries:
        client_as.get(reverse(url, args=[small.pk]))
    with django_assert_max_num_queries(len(small_queries)):
        client_as.get(reverse(url, args=[big.pk]))


def test_an_unknown_example_is_404(client_as, db):
    assert client_as.get(reverse("collection-example-detail", args=[999])).status_code == 404


def test_a_user_without_a_role_cannot_read_a_trajectory(client, db, django_user_model):
    client.force_login(django_user_model.objects.create_user("nobody", password="password"))
    execution = make_trajectory()
    url = reverse("collection-execution-detail", args=[execution.pk])
    assert client.get(url).status_code == 403


def test_execution_page_shows_a_running_execution_without_an_example(client_as, db):
    execution = make_execution(status=TaskStatus.IN_PROGRESS, success=None, is_partial=True)
    make_message(execution, {"type": "user", "uuid": "p", "message": {"content": "Go on"}})
    response = client_as.get(reverse("collection-execution-detail", args=[execution.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "still running" in html and "no training example" in html
    assert "Go on" in html
    assert 'class="step-mark"' not in html  # marks live on the example's page


def test_execution_page_of_a_failed_infrastructure_session_says_why(client_as, db):
    execution = make_execution(
        status=TaskStatus.FAILED,
        success=False,
        error="error_during_execution; api_error_status=401",
        performance_metrics={"infrastructure_failure": True},
    )
    html = client_as.get(reverse("collection-execution-detail", args=[execution.pk])).content
    assert b"infrastructure failure" in html
    assert b"api_error_status=401" in html
    assert b"No messages stored" in html


def test_execution_page_links_to_its_example(client_as, db):
    example = make_example(make_trajectory())
    html = client_as.get(reverse("collection-execution-detail", args=[example.execution_id]))
    assert reverse("collection-example-detail", args=[example.pk]).encode() in html.content


def test_an_unknown_execution_is_404(client_as, db):
    assert client_as.get(reverse("collection-execution-detail", args=[999])).status_code == 404


def test_a_long_output_ships_as_a_preview_with_a_real_show_all_link(client_as, db):
    execution = make_execution()
    call = _long_output_call(execution)
    html = client_as.get(reverse("collection-execution-detail", args=[execution.pk])).content
    url = reverse("collection-tool-output", args=[execution.pk, call.pk])
    assert f'href="{url}" hx-get="{url}"'.encode() in html
    assert b"line 5\n" in html and b"line 499" not in html


def test_tool_output_partial_has_the_whole_output_and_replaces_the_preview(client_as, db):
    execution = make_execution()
    call = _long_output_call(execution)
    url = reverse("collection-tool-output", args=[execution.pk, call.pk])
    response = client_as.get(url, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith(f'<div class="output full" id="out-{call.pk}"')
    assert "line 499" in html and "<html" not in html


def test_tool_output_without_htmx_is_a_full_page(client_as, db):
    execution = make_execution()
    call = _long_output_call(execution)
    response = client_as.get(reverse("collection-tool-output", args=[execution.pk, call.pk]))
    html = response.content.decode()
    assert "<html" in html and "line 499" in html
    assert reverse("collection-execution-detail", args=[execution.pk]) in html


def test_tool_output_of_another_executions_call_is_404(client_as, db):
    execution = make_execution()
    call = _long_output_call(execution)
    other = make_execution(session_id="other")
    url = reverse("collection-tool-output", args=[other.pk, call.pk])
    assert client_as.get(url).status_code == 404
    assert (
        client_as.get(reverse("collection-tool-output", args=[execution.pk, 999])).status_code
        == 404
    )


def test_the_whole_file_of_a_long_write_loads_on_demand(client_as, db):
    execution = make_execution()
    content = "".join(f"x_{i} = {i}\n" for i in range(300))
    write = tool_use("toolu_w", "Write", file_path="big.py", content=content)
    make_message(execution, assistant_payload([write], response="m1"))
    call = ToolCall.objects.create(
        execution=execution, tool_use_id="toolu_w", name="Write", input=write["input"]
    )
    page = client_as.get(reverse("collection-execution-detail", args=[execution.pk])).content
    url = reverse("collection-tool-output", args=[execution.pk, call.pk]) + "?part=input"
    assert f'href="{url}"'.encode() in page and b"x_299" not in page
    partial = client_as.get(url, **HTMX).content.decode()
    assert partial.lstrip().startswith(f'<div class="tool-input" id="in-{call.pk}"')
    assert "x_299" in partial


def test_raw_json_partial_is_pretty_printed_and_escaped(client_as, db):
    execution = make_execution()
    message = make_message(
        execution, {"type": "user", "uuid": "u", "message": {"content": "<b>hi</b>"}}
    )
    url = reverse("collection-message-raw", args=[execution.pk, message.pk])
    response = client_as.get(url, **HTMX)
    html = response.content.decode()
    assert html.lstrip().startswith(f'<details class="raw-json" id="raw-{message.pk}"')
    assert "&lt;b&gt;hi&lt;/b&gt;" in html and "<b>" not in html
    shown = html.split('<pre class="json">')[1].split("</pre>")[0]
    assert unescape(shown) == json.dumps(message.payload, indent=2, sort_keys=True)


def test_raw_json_without_htmx_is_a_full_page(client_as, db):
    execution = make_execution()
    message = make_message(execution, {"type": "system", "subtype": "init", "uuid": "i"})
    response = client_as.get(reverse("collection-message-raw", args=[execution.pk, message.pk]))
    assert response.status_code == 200
    assert b"<html" in response.content and b"Message #1" in response.content


def test_raw_json_of_another_executions_message_is_404(client_as, db):
    execution = make_execution()
    message = make_message(execution, {"type": "user", "uuid": "u", "message": {"content": "x"}})
    other = make_execution(session_id="other")
    assert (
        client_as.get(reverse("collection-message-raw", args=[other.pk, message.pk])).status_code
        == 404
    )


def test_every_raw_json_and_show_all_link_is_a_real_href(client_as, db):
    example = make_example(make_trajectory(turns=2, output_lines=40))
    html = client_as.get(reverse("collection-example-detail", args=[example.pk])).content.decode()
    hx_gets = html.count("hx-get=")
    assert hx_gets > 0
    assert hx_gets == html.count('" hx-get="')  # each follows its own href
    for url in {part.split('"')[0] for part in html.split('hx-get="')[1:]}:
        assert client_as.get(url.replace("&amp;", "&")).status_code == 200
