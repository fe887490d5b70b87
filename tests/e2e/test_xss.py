"""Hostile transcripts: every field a transcript can fill carries markup that would set
`window.__xss` if it ever ran. Rendered in Chromium, with everything expanded and loaded on
demand, nothing runs and nothing even gets as far as the Content-Security-Policy."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from collection.models import Execution, TaskStatus
from collection.sessions.trajectory import TrajectoryRecorder
from tests.e2e.conftest import log_in, screenshot
from tests.factories import (
    assistant_payload,
    make_example,
    make_execution,
    make_task,
    result_payload,
    tool_use,
)

CORPUS = [
    "<script>window.__xss=1</script>",
    '<img src=x onerror="window.__xss=1">',
    "[click me](javascript:window.__xss=1)",
    "![img](javascript:window.__xss=1)",
    '<svg onload="window.__xss=1"><script>window.__xss=1</script></svg>',
    '"><img src=x onerror=window.__xss=1>',
    "' onmouseover='window.__xss=1' x='",
    '<a href="javascript:window.__xss=1">link</a>',
    '<details open ontoggle="window.__xss=1">x</details>',
    '<iframe srcdoc="<script>parent.__xss=1</script>"></iframe>',
    "</pre></textarea><script>window.__xss=1</script>",
    '<div hx-get="/" hx-trigger="load" hx-on::after-request="window.__xss=1">htmx</div>',
]
EVIL = " ".join(CORPUS)

# Elements no transcript may add to the page (the page's own scripts come from /static/).
FOREIGN = "main script:not([src^='/static/']), main iframe, main svg, main img"
LISTENERS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation',
    (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
"""


def _hostile_session() -> Execution:
    task = make_task(name=f"Task {EVIL}", description=EVIL)
    execution = make_execution(
        task,
        status=TaskStatus.FAILED,
        success=False,
        session_id="<script>window.__xss=1</script>",
        model=CORPUS[1],
        error=EVIL,
        outcome=EVIL,
        performance_metrics={"verifier": {"command": EVIL, "exit_code": 1, "output": EVIL}},
    )
    recorder = TrajectoryRecorder(execution)
    for payload in _payloads():
        recorder.record(payload)
    execution.status, execution.success = TaskStatus.FAILED, False  # the result said success
    execution.save()
    make_example(execution, tags=[EVIL], validator_notes=EVIL)
    return execution


def _payloads() -> list[dict[str, Any]]:
    init = {"type": "system", "subtype": "init", "uuid": "init", "model": EVIL, "cwd": EVIL}
    prompt = {"type": "user", "uuid": "prompt", "message": {"content": EVIL}}
    notice = {"type": "system", "subtype": CORPUS[0], "uuid": "notice", "content": EVIL}
    odd = {"type": CORPUS[1], "uuid": "odd", "data": EVIL}
    text = {"type": "text", "text": "\n\n".join(CORPUS)}
    thinking = {"type": "thinking", "thinking": EVIL}
    path = f"{CORPUS[5]}.html"
    calls = [
        tool_use("t_bash", "Bash", command=EVIL, description=EVIL),
        tool_use("t_edit", "Edit", file_path=path, old_string=EVIL, new_string=EVIL + "\n" + EVIL),
        tool_use("t_write", "Write", file_path=path, content="\n".join(CORPUS * 5)),
        tool_use("t_todo", "TodoWrite", todos=[{"content": c, "status": c} for c in CORPUS]),
        tool_use("t_grep", "Grep", pattern=EVIL, path=EVIL, glob=EVIL),
        tool_use(f"t_{CORPUS[6]}", CORPUS[0], url=EVIL),
        tool_use("t_task", "Task", description=EVIL, subagent_type=EVIL, prompt=EVIL),
    ]
    answers = [
        result_payload(call["id"], "\n".join(CORPUS * 3), is_error=n % 2 == 0)
        for n, call in enumerate(calls)
        if call["id"] != "t_task"
    ]
    sub_text = {"type": "text", "text": EVIL}
    subagent = [
        {
            "type": "user",
            "uuid": "sub-prompt",
            "parent_tool_use_id": "t_task",
            "message": {"content": EVIL},
        },
        assistant_payload(
            [sub_text, tool_use("t_sub", "Read", file_path=EVIL)], response="sub_1", parent="t_task"
        ),
        result_payload("t_sub", [{"type": "text", "text": EVIL}], is_error=True, parent="t_task"),
    ]
    result = {"type": "result", "subtype": CORPUS[0], "uuid": "result", "result": EVIL}
    return [
        init, prompt, notice, odd,
        assistant_payload([thinking, text, *calls], response="msg_1"),
        *answers, *subagent,
        result_payload("t_task", [{"type": "text", "text": EVIL}]),
        result,
    ]  # fmt: skip


def _expand_everything(page: Page) -> None:
    """Open every <details> and load every on-demand part (raw JSON, whole outputs)."""
    page.evaluate("document.querySelectorAll('details').forEach((d) => d.open = true)")
    for selector in ("a.show-all", "a.raw-link"):
        page.evaluate(f"document.querySelectorAll('{selector}').forEach((a) => a.click())")
        expect(page.locator(selector)).to_have_count(0)
    page.evaluate("document.querySelectorAll('details').forEach((d) => d.open = true)")


def _assert_nothing_ran(page: Page, console: list[str]) -> None:
    assert page.evaluate("window.__xss") is None
    assert page.evaluate("window.__violations") == []
    assert not [line for line in console if "Content Security Policy" in line]
    handlers = page.evaluate(
        "[...document.querySelectorAll('*')].flatMap((el) => [...el.attributes]"
        ".filter((a) => a.name.startsWith('on') || a.name.startsWith('hx-on')"
        " || a.value.trim().toLowerCase().startsWith('javascript:')).map((a) => a.name))"
    )
    assert handlers == []
    found = page.evaluate(f"[...document.querySelectorAll({FOREIGN!r})].map((e) => e.outerHTML)")
    assert found == []


@pytest.mark.parametrize("which", ["example", "execution"])
def test_a_hostile_transcript_runs_nothing(page, live_server, reviewer, which):
    execution = _hostile_session()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.add_init_script(LISTENERS)
    log_in(page, live_server, reviewer.username)
    if which == "example":
        page.goto(f"{live_server.url}/examples/{execution.training_example.pk}/")
    else:
        page.goto(f"{live_server.url}/executions/{execution.pk}/")
    assert page.locator(".tool").count() >= 8  # the cards are there, escaped
    assert page.locator(".tool-error").count() >= 3
    _expand_everything(page)
    assert page.locator(".output.full").count() >= 1 and page.locator(".raw-json").count() >= 5
    assert "<script>window.__xss=1</script>" in page.locator(".tj-head h1").inner_text()
    _assert_nothing_ran(page, console)
    if which == "execution":
        screenshot(page, "xss-execution-page")
