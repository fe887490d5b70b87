"""The collector end to end: real SDK, real bundled CLI, the scripted model, a sandbox."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from claude_agent_sdk import query

from collection.models import AgentRole, Execution, Source, TaskStatus, TrainingExample
from collection.schema import TaskDefinition
from collection.sessions.collector import TrainingDataCollector
from tests.sessions import BUGGY, FIX_SCRIPT, VERIFIER, make_workspace, scripted_options

pytestmark = pytest.mark.django_db(transaction=True)

TASK = TaskDefinition(
    name="Fix add()",
    description="calc.add subtracts; make test_calc.py pass",
    category="debugging",
    difficulty="easy",
    required_tools=["Read", "Edit", "Bash"],
    expected_outcomes=["test_calc.py passes"],
    metadata={"verifier": VERIFIER},
)


def collect(options, prompt="Fix the failing test in test_calc.py", task=TASK, **kw):
    collector = TrainingDataCollector(quality_scorer=kw.pop("quality_scorer", None))
    kw.setdefault("source", Source.SCRIPTED)

    async def go():
        seen = []
        async with collector.collect_from_query(
            task=task, prompt=prompt, query_func=query, options=options, **kw
        ) as messages:
            async for message in messages:
                seen.append(message)
        return seen

    seen = asyncio.run(go())
    return collector, seen


def test_a_successful_session_is_stored_faithfully_and_scored(tmp_path):
    work = make_workspace(tmp_path / "work")
    collector, seen = collect(scripted_options(work, script=FIX_SCRIPT))
    ex = collector.last_example.execution
    ex.refresh_from_db()

    assert "a + b" in (work / "calc.py").read_text()  # the CLI really edited the file
    assert (ex.status, ex.success, ex.is_partial, ex.source) == (
        TaskStatus.COMPLETED,
        True,
        False,
        Source.SCRIPTED,
    )
    assert ex.messages.count() == len(seen)
    types = list(ex.messages.values_list("type", flat=True))
    assert types[0] == "system" and types[-1] == "result"
    assert ex.session_id and ex.model and ex.metadata["cwd"] == str(work)
    assert "Bash" in ex.metadata["tools"]

    calls = {c.name: c for c in ex.tool_calls.all()}
    assert list(calls) == ["Read", "Edit", "Bash"]
    assert all(c.is_error is False and c.answered_in_id for c in calls.values())
    assert "ok" in str(calls["Bash"].result)
    assert calls["Bash"].structured_result["stdout"].strip() == "ok"

    result = seen[-1]
    assert ex.num_turns == result.num_turns > 1
    assert ex.cost_usd == result.total_cost_usd > 0
    assert ex.duration_ms == result.duration_ms and ex.api_duration_ms == result.duration_api_ms
    assert ex.cache_read_input_tokens == result.usage["cache_read_input_tokens"] > 0
    assert ex.cache_creation_input_tokens == result.usage["cache_creation_input_tokens"] > 0
    assert ex.performance_metrics["verifier"]["exit_code"] == 0
    assert ex.outcome.startswith("Fixed add()")
    thinking = ex.actions.get(tool_name="Read").reasoning
    assert "read the module" in thinking

    example = collector.last_example
    assert example.execution_id == ex.pk
    assert example.quality_score == 1.0 and example.is_golden


def test_success_comes_from_the_verifier_not_from_the_agents_claim(tmp_path):
    work = make_workspace(tmp_path / "work")
    claims_only = [FIX_SCRIPT[1], {"text": "Fixed it, all tests pass."}]
    collector, _ = collect(scripted_options(work, script=claims_only))
    ex = collector.last_example.execution
    assert (work / "calc.py").read_text() == BUGGY
    assert ex.status == TaskStatus.COMPLETED and ex.success is False
    assert "add is broken" in ex.performance_metrics["verifier"]["output"]
    assert collector.last_example.quality_score <= 0.6 and not collector.last_example.is_golden


def test_a_tool_error_is_paired_with_its_call(tmp_path):
    work = make_workspace(tmp_path / "work")
    collector, _ = collect(scripted_options(work, policy="tool_error"), verifier="")
    ex = collector.last_example.execution
    failed = ex.tool_calls.filter(is_error=True)
    assert failed.count() == 1
    assert ex.performance_metrics["tool_errors"] == 1
    assert ex.status == TaskStatus.COMPLETED and ex.success is True


def test_max_turns_ends_as_a_failed_execution_with_the_reason(tmp_path):
    work = make_workspace(tmp_path / "work")
    collector, seen = collect(scripted_options(work, policy="max_turns", max_turns=3))
    ex = collector.last_example.execution
    assert seen[-1].subtype == "error_max_turns"
    assert ex.status == TaskStatus.FAILED and ex.success is False
    assert "error_max_turns" in ex.error
    # The verifier still judged the workspace the agent left, for the reviewer.
    assert ex.performance_metrics["verifier"]["exit_code"] == 1
    assert ex.messages.filter(type="result").count() == 1
    assert ex.tool_calls.count() >= 2


def test_a_model_error_is_a_failed_session_without_an_example(tmp_path):
    work = make_workspace(tmp_path / "work")
    collector, _ = collect(scripted_options(work, policy="model_error"))
    assert collector.last_example is None  # no model answered: nothing to learn from
    ex = Execution.objects.get()
    assert ex.status == TaskStatus.FAILED and ex.success is False
    assert ex.error.startswith("no model response: ") and "api_error_status=500" in ex.error
    assert ex.messages.filter(type="result").exists()
    assert ex.performance_metrics["infrastructure_failure"] is True


def test_a_cli_killed_mid_session_keeps_the_partial_trajectory(tmp_path):
    work = make_workspace(tmp_path / "work")
    options = scripted_options(work, policy="slow", script=None)
    collector = TrainingDataCollector()

    async def go():
        async with collector.collect_from_query(
            task=TASK, prompt="Take your time", options=options
        ) as messages:
            async for message in messages:
                if getattr(message, "subtype", "") == "init":
                    for pid in cli_pids():
                        os.kill(pid, signal.SIGKILL)

    with pytest.raises(Exception):  # noqa: B017 - the SDK's error type for a dead CLI
        asyncio.run(go())
    ex = Execution.objects.get()
    assert ex.status == TaskStatus.FAILED and ex.is_partial
    assert ex.messages.filter(type="system", subtype="init").exists()
    assert not ex.messages.filter(type="result").exists()
    # Killed before the model answered: the CLI failed, the agent did nothing.
    assert ex.error.startswith("no model response: ")
    assert collector.last_example is None and not TrainingExample.objects.exists()


def cli_pids() -> list[int]:
    """The bundled CLI processes this test process started."""
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
            cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and b"claude" in cmdline:
            pids.append(int(entry.name))
    assert pids, "no CLI process found"
    return pids


def test_stopping_early_marks_the_execution_cancelled_and_partial(tmp_path):
    work = make_workspace(tmp_path / "work")
    collector = TrainingDataCollector()

    async def go():
        async with collector.collect_from_query(
            task=TASK, prompt="Fix it", options=scripted_options(work, script=FIX_SCRIPT)
        ) as messages:
            async for message in messages:
                if type(message).__name__ == "AssistantMessage":
                    break

    asyncio.run(go())
    ex = collector.last_example.execution
    assert ex.status == TaskStatus.CANCELLED and ex.is_partial
    assert ex.messages.count() >= 2


def test_a_subagent_session_nests_its_turns_under_the_coordinator(tmp_path):
    work = make_workspace(tmp_path / "work")
    script = [
        {
            "tool": "Agent",
            "input": {
                "description": "inspect",
                "prompt": "Inspect calc.py",
                "subagent_type": "general-purpose",
            },
            "subagent": [
                {"tool": "Read", "input": {"file_path": "calc.py"}},
                {"text": "add() subtracts."},
            ],
        },
        {"text": "The sub-agent found the bug."},
    ]
    collector, seen = collect(scripted_options(work, script=script), verifier="")
    ex = collector.last_example.execution
    nested = [m for m in seen if getattr(m, "parent_tool_use_id", None)]
    assert nested, "the CLI reported no sub-agent turns"
    delegation = ex.actions.get(tool_name__in=["Agent", "Task"])
    assert delegation.role == AgentRole.COORDINATOR and delegation.agent_id == "main"
    sub = ex.actions.get(tool_name="Read")
    assert sub.role == AgentRole.SPECIALIST and sub.parent_id == delegation.pk
    assert sub.agent_id == "general-purpose"
    assert ex.tool_calls.get(name="Read").parent_tool_use_id == delegation.tool_use_id
