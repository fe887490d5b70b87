"""Claude Code transcripts: real sessions import with counts derived here, independently."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from collection.importers import import_file, import_paths
from collection.models import (
    AgentAction,
    Execution,
    Message,
    Task,
    TaskStatus,
    ToolCall,
    TrainingExample,
)

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures" / "transcripts"
TASK_TOOL_USE = "toolu_01Cz2Pnv7qNcnK1ZiocxWhQX"  # the Task call in spotter__subagent.jsonl
# USD per million tokens: input, output, 5-minute cache write, 1-hour cache write, cache read.
PRICES = {
    "claude-opus-4-6": (5.0, 25.0, 6.25, 10.0, 0.5),
    "claude-haiku-4-5-20251001": (1.0, 5.0, 1.25, 2.0, 0.1),
    "claude-sonnet-4-5-20250929": (3.0, 15.0, 3.75, 6.0, 0.3),
}


# --- counting the files by hand ----------------------------------------------------------------


def records(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line]


def embedded(name: str) -> list[dict[str, Any]]:
    """The sub-agent messages carried by a transcript's agent_progress lines."""
    return [
        r["data"]["message"]
        for r in records(name)
        if r["type"] == "progress" and r["data"].get("type") == "agent_progress"
    ]


def message_count(lines: list[dict[str, Any]]) -> int:
    """Every line is a message, except that the lines of one response make one."""
    responses = {r["message"]["id"] for r in lines if r["type"] == "assistant"}
    return sum(1 for r in lines if r["type"] != "assistant") + len(responses)


def tool_use_ids(lines: list[dict[str, Any]]) -> list[str]:
    return [
        block["id"]
        for r in lines
        if r["type"] == "assistant"
        for block in r["message"]["content"]
        if block["type"] == "tool_use"
    ]


def final_usage(lines: list[dict[str, Any]]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each response's model and the usage on its last line (the stream's final count)."""
    usage = {}
    for r in lines:
        if r["type"] == "assistant":
            usage[r["message"]["id"]] = (r["message"]["model"], r["message"]["usage"])
    return usage


def token_total(lines: list[dict[str, Any]]) -> int:
    fields = ("input_tokens", "output_tokens", "cache_creation_input_tokens")
    return sum(
        sum(u.get(f, 0) for f in (*fields, "cache_read_input_tokens"))
        for _, u in final_usage(lines).values()
    )


def cost(lines: list[dict[str, Any]]) -> float:
    usd = 0.0
    for model, u in final_usage(lines).values():
        inp, out, write_5m, write_1h, read = PRICES[model]
        one_hour = (u.get("cache_creation") or {}).get("ephemeral_1h_input_tokens", 0)
        usd += (
            u["input_tokens"] * inp
            + u["output_tokens"] * out
            + (u["cache_creation_input_tokens"] - one_hour) * write_5m
            + one_hour * write_1h
            + u["cache_read_input_tokens"] * read
        ) / 1e6
    return usd


def span_ms(lines: list[dict[str, Any]]) -> int:
    times = [datetime.fromisoformat(r["timestamp"]) for r in lines if "timestamp" in r]
    return (max(times) - min(times)) // timedelta(milliseconds=1)


def session_folder(tmp_path: Path, main: str, subagents: dict[str, str]) -> Path:
    """Lay fixtures out as ~/.claude/projects/<project>/<session>.jsonl + subagents/."""
    session_id = next(r["sessionId"] for r in records(main) if "sessionId" in r)
    project = tmp_path / "-home-user-project"
    (project / session_id / "subagents").mkdir(parents=True)
    shutil.copy(FIXTURES / main, project / f"{session_id}.jsonl")
    for agent_id, name in subagents.items():
        shutil.copy(FIXTURES / name, project / session_id / "subagents" / f"agent-{agent_id}.jsonl")
    return project / f"{session_id}.jsonl"


def only_execution() -> Execution:
    (execution,) = Execution.objects.all()
    return execution


# --- whole sessions ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["spotter__short.jsonl", "spotter__tool_heavy.jsonl"])
def test_a_transcript_imports_with_the_counts_of_its_lines(name: str) -> None:
    lines = records(name)
    report = import_file(FIXTURES / name)

    assert report.ok and report.imported == 1
    execution = only_execution()
    assert execution.messages.count() == message_count(lines)
    assert sorted(execution.tool_calls.values_list("tool_use_id", flat=True)) == sorted(
        tool_use_ids(lines)
    )
    assert execution.total_tokens == token_total(lines)
    assert execution.cost_usd == pytest.approx(cost(lines))
    assert execution.cost_estimated is True
    assert execution.duration_ms == span_ms(lines)
    assert execution.num_turns == len(final_usage(lines))


def test_session_details_come_from_the_transcript() -> None:
    import_file(FIXTURES / "spotter__short.jsonl")

    execution = only_execution()
    assert execution.source == "imported"
    assert execution.session_id == "55604662-cf2a-4331-851a-ec234028f8ca"
    assert execution.model == "claude-opus-4-6"
    assert execution.metadata["importer"] == "claude_code"
    assert execution.metadata["file"] == str(FIXTURES / "spotter__short.jsonl")
    assert execution.metadata["cwd"] == "/home/marco/projects/spotter"
    assert execution.metadata["git_branch"] == "master"
    assert execution.metadata["claude_code_version"] == "2.1.38"
    assert execution.metadata["cost_basis"] == "price_table"
    assert execution.status == TaskStatus.COMPLETED and execution.success is None
    assert execution.is_partial is False
    assert execution.task.name == "mix phx.server doesnt seem to start"
    # Categorised from what it did (collection.importers.categorise): it ran and fixed things.
    assert (execution.task.category, execution.task.difficulty) == ("debugging", "easy")


def test_each_imported_session_gets_a_scored_training_example() -> None:
    import_paths([FIXTURES / "spotter__short.jsonl", FIXTURES / "spotter__tool_heavy.jsonl"])

    examples = TrainingExample.objects.all()
    assert examples.count() == 2
    # Success is unknown for a transcript: never the 40% success share, never golden.
    assert all(0 < e.quality_score <= 0.6 and not e.is_golden for e in examples)


def test_every_line_type_is_kept() -> None:
    lines = records("spotter__tool_heavy.jsonl")
    import_file(FIXTURES / "spotter__tool_heavy.jsonl")

    stored = Counter(only_execution().messages.values_list("type", flat=True))
    expected = Counter(r["type"] for r in lines if r["type"] != "assistant")
    expected["assistant"] = len(final_usage(lines))
    assert stored == expected
    assert {"file-history-snapshot", "queue-operation", "progress", "system"} <= set(stored)


def test_an_unknown_line_type_is_stored_not_dropped(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    novel = {"type": "brand-new-kind", "sessionId": "s-1", "uuid": "u-9", "payload": [1, 2]}
    path.write_text((FIXTURES / "spotter__short.jsonl").read_text() + json.dumps(novel) + "\n")

    import_file(path)

    message = Message.objects.get(type="brand-new-kind")
    assert message.payload == novel


# --- one response, many lines --------------------------------------------------------------------


def test_the_lines_of_one_response_become_one_message_with_its_usage_counted_once() -> None:
    lines = [r for r in records("spotter__short.jsonl") if r["type"] == "assistant"]
    assert len(lines) == 5 and len({r["message"]["id"] for r in lines}) == 1
    import_file(FIXTURES / "spotter__short.jsonl")

    (message,) = Message.objects.filter(type="assistant")
    blocks = [b for r in lines for b in r["message"]["content"]]
    assert message.payload["message"]["content"] == blocks
    # Keyed by the response, so a re-import reading more or fewer of its lines finds it.
    assert message.uuid == lines[0]["message"]["id"]
    assert message.payload["uuid"] == lines[0]["uuid"]
    assert [m["uuid"] for m in message.payload["merged_lines"]] == [r["uuid"] for r in lines[1:]]
    usage = lines[-1]["message"]["usage"]
    execution = only_execution()
    assert execution.input_tokens == usage["input_tokens"]
    assert execution.output_tokens == usage["output_tokens"]
    assert execution.cache_creation_input_tokens == usage["cache_creation_input_tokens"]
    assert execution.cache_read_input_tokens == usage["cache_read_input_tokens"]


def test_a_response_counts_its_final_usage_not_the_first_nor_the_sum() -> None:
    lines = records("spotter__subagent.jsonl")
    outputs: dict[str, list[int]] = {}
    for r in lines:
        if r["type"] == "assistant":
            outputs.setdefault(r["message"]["id"], []).append(
                r["message"]["usage"]["output_tokens"]
            )
    varying = {rid: o for rid, o in outputs.items() if len(set(o)) > 1}
    assert varying  # this sample has responses whose lines disagree

    import_file(FIXTURES / "spotter__subagent.jsonl")

    main = only_execution().usage["by_agent"]["main"]["output_tokens"]
    assert main == sum(o[-1] for o in outputs.values())
    assert main < sum(sum(o) for o in outputs.values())


def test_thinking_becomes_the_reasoning_of_the_response_tool_calls() -> None:
    lines = [r for r in records("spotter__short.jsonl") if r["type"] == "assistant"]
    thinking = " ".join(
        b["thinking"] for r in lines for b in r["message"]["content"] if b["type"] == "thinking"
    ).strip()
    import_file(FIXTURES / "spotter__short.jsonl")

    actions = AgentAction.objects.all()
    assert actions.count() == 2
    assert all(a.reasoning == thinking for a in actions)


def test_tool_results_pair_with_their_calls_with_structured_output() -> None:
    lines = records("spotter__tool_heavy.jsonl")
    import_file(FIXTURES / "spotter__tool_heavy.jsonl")

    for r in lines:
        if r["type"] != "user" or not isinstance(r["message"]["content"], list):
            continue
        for block in r["message"]["content"]:
            if block["type"] == "tool_result":
                call = ToolCall.objects.get(tool_use_id=block["tool_use_id"])
                assert call.result == block["content"]
                assert call.is_error is bool(block.get("is_error"))
                assert call.structured_result == r.get("toolUseResult")
                assert call.answered_in.uuid == r["uuid"]
                assert call.answered_in.seq > call.requested_in.seq


def test_a_rejected_tool_use_is_an_error() -> None:
    import_file(FIXTURES / "spotter__short.jsonl")

    assert ToolCall.objects.filter(is_error=True).count() == 2


# --- sub-agents --------------------------------------------------------------------------------


def _check_nested_subagent(execution: Execution) -> None:
    main = records("spotter__subagent.jsonl")
    sub = embedded("spotter__subagent.jsonl")
    assert execution.messages.count() == message_count(main) + message_count(sub)
    assert execution.tool_calls.count() == len(tool_use_ids(main)) + len(tool_use_ids(sub))
    assert execution.total_tokens == token_total(main) + token_total(sub)
    assert execution.cost_usd == pytest.approx(cost(main) + cost(sub))

    delegation = AgentAction.objects.get(tool_use_id=TASK_TOOL_USE)
    assert delegation.role == "coordinator"
    sub_calls = ToolCall.objects.filter(parent_tool_use_id=TASK_TOOL_USE)
    assert sorted(c.tool_use_id for c in sub_calls) == sorted(tool_use_ids(sub))
    for action in AgentAction.objects.filter(tool_use_id__in=tool_use_ids(sub)):
        assert (action.agent_id, action.role, action.parent) == ("Plan", "specialist", delegation)

    # The sub-agent's turns sit between the Task call and its result.
    sub_messages = execution.messages.filter(parent_tool_use_id=TASK_TOOL_USE)
    assert sub_messages.count() == message_count(sub)
    assert all(m.payload["isSidechain"] is True for m in sub_messages)
    task_call = ToolCall.objects.get(tool_use_id=TASK_TOOL_USE)
    seqs = [m.seq for m in sub_messages]
    assert task_call.requested_in.seq < min(seqs) and max(seqs) < task_call.answered_in.seq


def test_a_subagent_file_is_nested_under_its_parent_task_call(tmp_path: Path) -> None:
    session = session_folder(
        tmp_path, "spotter__subagent.jsonl", {"afb92ff": "spotter__subagent__agent-afb92ff.jsonl"}
    )

    report = import_paths([session.parent])

    assert report.ok and report.imported == 1
    execution = only_execution()
    _check_nested_subagent(execution)
    (described,) = execution.metadata["subagents"]
    assert described["agent_id"] == "afb92ff" and described["source"] == "file"
    assert described["tool_use_id"] == TASK_TOOL_USE
    # The sub-agent file's own lines were stored (with their envelope), not the progress
    # lines' copies.
    sub_messages = execution.messages.filter(parent_tool_use_id=TASK_TOOL_USE)
    assert all(m.payload["gitBranch"] == "master" for m in sub_messages)


def test_without_its_file_a_subagent_is_rebuilt_from_the_progress_lines() -> None:
    import_file(FIXTURES / "spotter__subagent.jsonl")

    execution = only_execution()
    _check_nested_subagent(execution)
    assert execution.metadata["subagents"][0]["source"] == "agent_progress"


def test_an_unlinked_subagent_file_is_kept_after_the_session_under_its_own_agent(
    tmp_path: Path,
) -> None:
    session = session_folder(
        tmp_path,
        "spotter__short.jsonl",
        {"acompact-946d2b": "spotter__agent-acompact-946d2b.jsonl"},
    )
    meta = {"agentType": "compact", "description": "auto-compaction"}
    (session.parent / session.stem / "subagents" / "agent-acompact-946d2b.meta.json").write_text(
        json.dumps(meta)
    )

    import_file(session)

    execution = only_execution()
    main, side = records("spotter__short.jsonl"), records("spotter__agent-acompact-946d2b.jsonl")
    assert execution.messages.count() == message_count(main) + message_count(side)
    last = list(execution.messages.order_by("-seq")[: len(side)])
    assert {m.payload.get("agentId") for m in last} == {"acompact-946d2b"}
    (described,) = execution.metadata["subagents"]
    assert (described["kind"], described["tool_use_id"], described["meta"]) == (
        "compaction",
        None,
        meta,
    )
    assert execution.usage["by_agent"]["subagents"]["output_tokens"] == sum(
        u["output_tokens"] for _, u in final_usage(side).values()
    )


def test_a_subagent_file_without_its_session_imports_on_its_own() -> None:
    lines = records("spotter__agent-aac57f5.jsonl")
    import_file(FIXTURES / "spotter__agent-aac57f5.jsonl")

    execution = only_execution()
    assert (execution.session_id, execution.agent_id) == (lines[0]["sessionId"], "aac57f5")
    assert execution.metadata["subagent_without_session"] is True
    assert execution.messages.count() == message_count(lines)
    assert execution.tool_calls.count() == len(tool_use_ids(lines))
    assert set(execution.actions.values_list("agent_id", "role")) == {("aac57f5", "specialist")}
    assert execution.task.name.startswith("Search hex.pm for the latest versions")
    assert execution.num_turns == len(
        {r["message"]["id"] for r in lines if r["type"] == "assistant"}
    )
    assert execution.num_turns > 0


def test_naming_a_subagent_file_imports_its_session(tmp_path: Path) -> None:
    session = session_folder(
        tmp_path, "spotter__subagent.jsonl", {"afb92ff": "spotter__subagent__agent-afb92ff.jsonl"}
    )
    subagent = session.parent / session.stem / "subagents" / "agent-afb92ff.jsonl"

    report = import_paths([subagent, session])

    assert report.files == 1 and report.imported == 1
    assert only_execution().metadata["file"] == str(session.resolve())


# --- importing again ---------------------------------------------------------------------------


def _snapshot() -> dict[str, Any]:
    return {
        "executions": list(Execution.objects.order_by("pk").values()),
        "messages": list(Message.objects.order_by("pk").values("pk", "uuid", "seq", "payload")),
        "tool_calls": list(ToolCall.objects.order_by("pk").values()),
        "actions": list(AgentAction.objects.order_by("pk").values()),
        "examples": list(TrainingExample.objects.order_by("pk").values()),
        "tasks": list(Task.objects.order_by("pk").values()),
    }


def test_importing_the_same_files_again_adds_and_changes_nothing(tmp_path: Path) -> None:
    session_folder(
        tmp_path, "spotter__subagent.jsonl", {"afb92ff": "spotter__subagent__agent-afb92ff.jsonl"}
    )
    shutil.copy(FIXTURES / "spotter__tool_heavy.jsonl", tmp_path)
    first = import_paths([tmp_path])
    before = _snapshot()

    again = import_paths([tmp_path])

    assert (first.imported, again.imported, again.skipped) == (2, 0, 2)
    assert _snapshot() == before


def test_a_session_that_grew_since_its_import_gets_the_new_messages(tmp_path: Path) -> None:
    full = (FIXTURES / "spotter__tool_heavy.jsonl").read_text().splitlines(keepends=True)
    path = tmp_path / "d6e0bada.jsonl"
    path.write_text("".join(full[:8]))
    import_file(path)
    early = only_execution()
    assert early.status == TaskStatus.IN_PROGRESS and early.is_partial  # a call awaits its result

    path.write_text("".join(full))
    report = import_file(path)

    execution = only_execution()
    lines = records("spotter__tool_heavy.jsonl")
    assert report.updated == 1 and report.sessions[0].execution_id == early.pk
    assert execution.messages.count() == message_count(lines)
    assert execution.total_tokens == token_total(lines)
    assert execution.status == TaskStatus.COMPLETED and not execution.is_partial


def test_a_response_cut_short_at_the_first_import_is_completed_later(tmp_path: Path) -> None:
    full = (FIXTURES / "spotter__short.jsonl").read_text().splitlines(keepends=True)
    path = tmp_path / "55604662.jsonl"
    path.write_text("".join(full[:6]))  # the response's first two of five lines
    import_file(path)
    assert ToolCall.objects.count() == 0

    path.write_text("".join(full))
    report = import_file(path)

    assert report.updated == 1
    lines = records("spotter__short.jsonl")
    (message,) = Message.objects.filter(type="assistant")
    assert len(message.payload["message"]["content"]) == 5
    assert sorted(ToolCall.objects.values_list("tool_use_id", flat=True)) == sorted(
        tool_use_ids(lines)
    )
    assert AgentAction.objects.count() == 2
    assert only_execution().messages.count() == message_count(lines)


def test_a_subagent_file_is_linked_through_the_task_result_without_progress_lines(
    tmp_path: Path,
) -> None:
    session = session_folder(
        tmp_path, "spotter__subagent.jsonl", {"afb92ff": "spotter__subagent__agent-afb92ff.jsonl"}
    )
    kept = [
        line
        for line in session.read_text().splitlines(keepends=True)
        if '"agent_progress"' not in line
    ]
    session.write_text("".join(kept))

    import_file(session)

    sub = records("spotter__subagent__agent-afb92ff.jsonl")
    calls = ToolCall.objects.filter(parent_tool_use_id=TASK_TOOL_USE)
    assert sorted(c.tool_use_id for c in calls) == sorted(tool_use_ids(sub))
    task_call = ToolCall.objects.get(tool_use_id=TASK_TOOL_USE)
    seqs = list(
        only_execution()
        .messages.filter(parent_tool_use_id=TASK_TOOL_USE)
        .values_list("seq", flat=True)
    )
    assert task_call.requested_in.seq < min(seqs) and max(seqs) < task_call.answered_in.seq
