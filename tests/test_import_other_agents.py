"""Other agents' trajectories (SWE-agent, OpenHands) mapped onto the same model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collection.importers import import_file
from collection.models import AgentAction, Execution, TaskStatus, ToolCall

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures" / "transcripts"
SWE = FIXTURES / "sweagent__function_calling_simple.traj"
OPENHANDS = FIXTURES / "openhands__basic.json"
AWAITING_USER = FIXTURES / "openhands__basic_gui_mode.json"


def test_a_swe_agent_trajectory_keeps_every_history_entry() -> None:
    history = json.loads(SWE.read_text())["history"]
    report = import_file(SWE)

    assert report.ok and report.imported == 1
    (execution,) = Execution.objects.all()
    assert execution.metadata["importer"] == "swe_agent"
    assert execution.messages.count() == len(history)
    assert list(execution.messages.values_list("payload__sweagent__message_type", flat=True)) == [
        h["message_type"] for h in history
    ]


def test_swe_agent_tool_calls_pair_with_observations_and_thoughts_are_reasoning() -> None:
    history = json.loads(SWE.read_text())["history"]
    import_file(SWE)

    calls = [(h, c) for h in history if h["role"] == "assistant" for c in h["tool_calls"]]
    assert ToolCall.objects.count() == len(calls)
    observations = {h["tool_call_ids"][0]: h["content"] for h in history if h["role"] == "tool"}
    for entry, call in calls:
        stored = ToolCall.objects.get(tool_use_id=call["id"])
        assert stored.name == call["function"]["name"]
        assert stored.input == json.loads(call["function"]["arguments"])
        assert stored.result == observations[call["id"]]
        assert AgentAction.objects.get(tool_use_id=call["id"]).reasoning == entry["thought"]


def test_a_swe_agent_trajectory_that_submitted_is_complete_with_success_unknown() -> None:
    import_file(SWE)

    (execution,) = Execution.objects.all()
    assert (execution.status, execution.success, execution.is_partial) == (
        TaskStatus.COMPLETED,
        None,
        False,
    )
    assert execution.outcome.lstrip().startswith("diff --git")
    assert execution.task.name == "SyntaxError: invalid syntax"
    assert execution.task.category == "debugging"  # from what it did: categorise.py


def test_an_openhands_trajectory_maps_actions_and_observations() -> None:
    events = json.loads(OPENHANDS.read_text())
    report = import_file(OPENHANDS)

    assert report.ok and report.imported == 1
    (execution,) = Execution.objects.all()
    assert execution.metadata["importer"] == "openhands"
    assert execution.messages.count() == len(events)
    tool_events = [e for e in events if "action" in e and e.get("tool_call_metadata")]
    assert ToolCall.objects.count() == len(tool_events)
    for event in events:
        if "observation" in event and event.get("tool_call_metadata"):
            call = ToolCall.objects.get(tool_use_id=event["tool_call_metadata"]["tool_call_id"])
            assert call.result == event["content"]
            assert call.structured_result == event["extras"]
    edit = AgentAction.objects.get(tool_name="str_replace_editor")
    assert edit.reasoning == events[1]["args"]["thought"]


def test_openhands_tokens_count_each_llm_response_once() -> None:
    events = json.loads(OPENHANDS.read_text())
    responses = {
        e["tool_call_metadata"]["model_response"]["id"]: e["tool_call_metadata"]["model_response"]
        for e in events
        if e.get("tool_call_metadata")
    }
    import_file(OPENHANDS)

    (execution,) = Execution.objects.all()
    assert execution.output_tokens == sum(
        r["usage"]["completion_tokens"] for r in responses.values()
    )
    # Prompt tokens include the cached ones: all of them are in the total once.
    assert execution.total_tokens == sum(r["usage"]["total_tokens"] for r in responses.values())
    assert execution.model == "claude-3-5-sonnet-20241022"
    assert execution.cost_estimated is True and execution.cost_usd > 0


def test_an_openhands_trajectory_that_finished_is_complete() -> None:
    events = json.loads(OPENHANDS.read_text())
    import_file(OPENHANDS)

    (execution,) = Execution.objects.all()
    assert execution.status == TaskStatus.COMPLETED and execution.success is None
    assert execution.outcome == events[-1]["args"]["thought"]
    assert execution.task.name.startswith("Please create a simple 2048 game.")
    assert execution.duration_ms > 0


def test_an_older_swe_agent_trajectory_without_function_calls_uses_its_actions(
    tmp_path: Path,
) -> None:
    history = json.loads(SWE.read_text())["history"]
    for entry in history:  # as SWE-agent wrote them before function calling
        entry.pop("tool_calls", None)
        entry.pop("tool_call_ids", None)
        if entry["role"] == "tool":
            entry["role"] = "user"
    path = tmp_path / "old.traj"
    path.write_text(json.dumps({"history": history}))

    import_file(path)

    actions = [h["action"] for h in history if h["role"] == "assistant"]
    calls = ToolCall.objects.order_by("id")
    assert [c.input["command"] for c in calls] == actions
    assert [c.name for c in calls] == [a.split()[0] for a in actions]
    assert all(c.result for c in calls)
    assert Execution.objects.get().status == TaskStatus.COMPLETED


OLD_SWE = FIXTURES / "sweagent__test-repo-i1.traj"
SUBMIT_IN_TRAJECTORY = FIXTURES / "sweagent__6e44b9__sweagenttestrepo-1c2844.traj"
REUSED_IDS = FIXTURES / "sweagent__marshmallow-1867__function_calling.traj"


def _issue(text: str) -> str:
    return text.split("ISSUE:\n", 1)[1].splitlines()[0].strip()


def test_an_older_swe_agent_trajectory_attaches_user_observations_to_its_actions() -> None:
    document = json.loads(OLD_SWE.read_text())
    history = document["history"]
    import_file(OLD_SWE)

    # Each action is answered by the history entry right after it (a user entry, no type);
    # the last one (submit) only in the trajectory's last step.
    following = [*history[1:], {"content": document["trajectory"][-1]["observation"]}]
    answers = [
        (h["action"].strip(), after["content"])
        for h, after in zip(history, following, strict=True)
        if h["role"] == "assistant"
    ]
    assert not any("message_type" in h for h in history)
    calls = ToolCall.objects.order_by("id")
    assert [(c.input["command"], c.result) for c in calls] == answers


def test_a_swe_agent_task_is_named_after_the_instance_issue_not_the_demonstration() -> None:
    history = json.loads(OLD_SWE.read_text())["history"]
    import_file(OLD_SWE)

    (demo,) = [h for h in history if h.get("is_demo")]
    own = next(h for h in history if h["role"] == "user" and not h.get("is_demo"))
    assert _issue(demo["content"]) != _issue(own["content"])
    execution = Execution.objects.get()
    assert execution.task.name == _issue(own["content"])
    stored = execution.messages.get(payload__subtype="demonstration")
    assert stored.payload["content"] == demo["content"]


def test_the_submit_step_found_only_in_the_trajectory_is_kept() -> None:
    document = json.loads(SUBMIT_IN_TRAJECTORY.read_text())
    steps, history = document["trajectory"], document["history"]
    assert sum(h["role"] == "assistant" for h in history) == len(steps) - 1
    import_file(SUBMIT_IN_TRAJECTORY)

    execution = Execution.objects.get()
    assert execution.messages.count() == len(history) + 2
    assert ToolCall.objects.count() == len(steps)
    submit = ToolCall.objects.order_by("id").last()
    assert submit is not None
    assert (submit.name, submit.result) == (steps[-1]["action"], steps[-1]["observation"])
    assert execution.status == TaskStatus.COMPLETED
    assert execution.outcome == document["info"]["submission"]


def test_a_reused_tool_call_id_keeps_each_call_with_its_own_result() -> None:
    history = json.loads(REUSED_IDS.read_text())["history"]
    calls = [c for h in history if h["role"] == "assistant" for c in h["tool_calls"]]
    results = [h["content"] for h in history if h["role"] == "tool"]
    assert len({c["id"] for c in calls}) < len(calls)  # the file does reuse ids
    import_file(REUSED_IDS)

    stored = list(ToolCall.objects.order_by("requested_in__seq"))
    assert [(c.name, c.input, c.result) for c in stored] == [
        (c["function"]["name"], json.loads(c["function"]["arguments"]), r)
        for c, r in zip(calls, results, strict=True)
    ]
    assert AgentAction.objects.filter(action_type="tool_use").count() == len(calls)


def test_an_openhands_session_that_ended_awaiting_user_input_is_complete() -> None:
    events = json.loads(AWAITING_USER.read_text())
    states = [
        e["extras"]["agent_state"] for e in events if e.get("observation") == "agent_state_changed"
    ]
    assert states[-1] == "awaiting_user_input"
    assert not any(e.get("action") == "finish" for e in events)
    import_file(AWAITING_USER)

    execution = Execution.objects.get()
    assert (execution.status, execution.success, execution.is_partial) == (
        TaskStatus.COMPLETED,
        None,
        False,
    )
    replies = [e for e in events if e.get("action") == "message" and e["source"] == "agent"]
    assert execution.outcome == replies[-1]["args"]["content"]
