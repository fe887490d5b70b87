"""Reading real imported sessions in Chromium: a long tool output expands in place, a sub-agent
opens under the Task call that started it, raw JSON loads on demand; screenshots of both pages."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from collection.importers import import_file
from collection.models import Execution, TaskStatus, ToolCall
from tests.e2e.conftest import log_in, screenshot
from tests.factories import (
    assistant_payload,
    make_execution,
    make_message,
    make_trajectory,
    result_payload,
    tool_use,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "transcripts"


def _imported(name: str) -> Execution:
    report = import_file(FIXTURES / name)
    return Execution.objects.get(pk=report.sessions[0].execution_id)


def _open_example(page: Page, live_server, execution: Execution) -> None:
    page.goto(f"{live_server.url}/examples/{execution.training_example.pk}/")
    expect(page.locator(".tj-head h1")).to_be_visible()


def test_a_reviewer_expands_a_long_tool_output(page, live_server, reviewer):
    execution = _imported("spotter__subagent.jsonl")
    call = ToolCall.objects.get(execution=execution, name="Glob", parent_tool_use_id="")
    last_line = str(call.result).splitlines()[-1]
    log_in(page, live_server, reviewer.username)
    _open_example(page, live_server, execution)
    output = page.locator(f"#out-{call.pk}")
    expect(output).not_to_contain_text(last_line)
    output.locator("a.show-all").click()
    expect(page.locator(f"#out-{call.pk}.full")).to_contain_text(last_line)
    expect(page.locator(f"#out-{call.pk} a.show-all")).to_have_count(0)


def test_a_reviewer_opens_a_nested_sub_agent(page, live_server, reviewer):
    execution = _imported("spotter__subagent.jsonl")
    log_in(page, live_server, reviewer.username)
    _open_example(page, live_server, execution)
    task_card = page.locator(".tool-agent").first
    expect(task_card.locator("> .tool-head .tool-name")).to_have_text("Task")
    subagent = task_card.locator("> details.subagent")
    nested_error = subagent.locator(".tool-error").first
    expect(nested_error).to_be_hidden()
    subagent.locator("> summary").click()
    expect(nested_error).to_be_visible()
    expect(nested_error).to_contain_text("EISDIR")
    expect(subagent.locator("> summary")).to_contain_text("5 turns")
    screenshot(page, "example-page")


def test_jump_links_reach_the_first_tool_error_inside_a_closed_sub_agent(
    page, live_server, reviewer
):
    execution = _imported("spotter__subagent.jsonl")
    log_in(page, live_server, reviewer.username)
    _open_example(page, live_server, execution)
    page.click(".jump >> text=first tool error")
    expect(page).to_have_url(f"{live_server.url}/examples/{execution.training_example.pk}/#error-1")
    expect(page.locator("#call-toolu_01LdecmEM8HVNM6T4ht7x8Gi")).to_be_in_viewport()


def test_raw_json_loads_in_place(page, live_server, viewer):
    execution = make_trajectory(turns=2)
    first_step = execution.messages.filter(type="assistant").order_by("seq").first()
    log_in(page, live_server, viewer.username)
    page.goto(f"{live_server.url}/executions/{execution.pk}/")
    page.locator(f"a#raw-{first_step.pk}").click()
    expect(page.locator(f"details#raw-{first_step.pk} pre")).to_contain_text('"thinking": "Turn 1')


def test_execution_page_of_a_running_session(page, live_server, viewer):
    execution = make_execution(status=TaskStatus.IN_PROGRESS, success=None, is_partial=True)
    make_trajectory(execution, turns=1)
    edit = tool_use(
        "toolu_edit",
        "Edit",
        file_path="calc.py",
        old_string="def add(a, b):\n    return a - b\n",
        new_string="def add(a, b):\n    return a + b\n",
    )
    todo = tool_use(
        "toolu_todo",
        "TodoWrite",
        todos=[
            {"content": "Read calc.py", "status": "completed"},
            {"content": "Fix add()", "status": "in_progress"},
            {"content": "Run the tests", "status": "pending"},
        ],
    )
    failing = tool_use("toolu_fail", "Bash", command="python test_calc.py")
    make_message(execution, assistant_payload([todo, edit, failing], response="msg_fix"))
    for call in (edit, todo, failing):
        ToolCall.objects.create(
            execution=execution, tool_use_id=call["id"], name=call["name"], input=call["input"]
        )
    answer = make_message(execution, result_payload("toolu_fail", "Exit code 1\nAssertionError"))
    ToolCall.objects.filter(tool_use_id="toolu_fail").update(
        result="Exit code 1\nAssertionError", is_error=True, answered_in=answer
    )
    log_in(page, live_server, viewer.username)
    page.goto(f"{live_server.url}/executions/{execution.pk}/")
    expect(page.locator(".tj-facts, .facts")).to_contain_text("still running")
    expect(page.locator(".tool-edit .dl-add")).to_contain_text("return a + b")
    expect(page.locator(".tool-todo .todo-inprogress")).to_contain_text("Fix add()")
    expect(page.locator(".tool-error .exit")).to_have_text("exit 1")
    screenshot(page, "execution-page")
