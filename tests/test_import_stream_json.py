"""stream-json logs (`claude -p --output-format stream-json`, SDK messages as JSON lines)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from collection.importers import import_file
from collection.models import Execution, TaskStatus, ToolCall

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures" / "transcripts"


def records(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line]


def test_a_print_mode_log_imports_with_the_result_message_totals() -> None:
    lines = records("gleam__basic_query.ndjson")
    result = lines[-1]
    report = import_file(FIXTURES / "gleam__basic_query.ndjson")

    assert report.ok and report.imported == 1
    (execution,) = Execution.objects.all()
    assert execution.metadata["importer"] == "stream_json"
    assert execution.session_id == result["session_id"]
    assert execution.messages.count() == len(lines)
    assert execution.cost_usd == result["total_cost_usd"] and execution.cost_estimated is False
    usage = result["usage"]
    assert execution.total_tokens == sum(
        usage[k]
        for k in (
            "input_tokens",
            "output_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
        )
    )
    assert execution.duration_ms == result["duration_ms"]
    assert execution.num_turns == result["num_turns"]
    assert execution.outcome == result["result"]
    assert (execution.status, execution.success) == (TaskStatus.COMPLETED, True)
    assert execution.model == lines[0]["model"]
    assert execution.metadata["cwd"] == lines[0]["cwd"]
    assert execution.metadata["claude_code_version"] == lines[0]["claude_code_version"]


def test_a_tool_call_pairs_with_its_result_and_structured_output() -> None:
    lines = records("gleam__tool_session.jsonl")
    import_file(FIXTURES / "gleam__tool_session.jsonl")

    (call,) = ToolCall.objects.all()
    use = lines[1]["message"]["content"][0]
    answer = lines[2]
    assert (call.tool_use_id, call.name, call.input) == (use["id"], use["name"], use["input"])
    assert call.result == answer["message"]["content"][0]["content"]
    assert call.structured_result == answer["tool_use_result"]
    assert call.is_error is False


def test_each_run_in_one_log_is_its_own_session(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    path.write_text(
        (FIXTURES / "gleam__basic_query.ndjson").read_text()
        + (FIXTURES / "gleam__tool_session.jsonl").read_text()
    )

    report = import_file(path)

    assert report.imported == 2
    counts = {e.session_id: e.messages.count() for e in Execution.objects.all()}
    assert counts == {
        records("gleam__basic_query.ndjson")[0]["session_id"]: 3,
        records("gleam__tool_session.jsonl")[0]["session_id"]: 4,
    }


def test_an_error_result_fails_the_session_with_its_reason(tmp_path: Path) -> None:
    lines = records("gleam__basic_query.ndjson")
    lines[-1] |= {"subtype": "error_max_turns", "is_error": True, "result": ""}
    path = tmp_path / "failed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))

    import_file(path)

    (execution,) = Execution.objects.all()
    assert (execution.status, execution.success) == (TaskStatus.FAILED, False)
    assert "error_max_turns" in execution.error


def test_a_log_without_a_result_is_partial(tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl"
    path.write_text(
        "".join((FIXTURES / "gleam__tool_session.jsonl").read_text().splitlines(True)[:2])
    )

    import_file(path)

    (execution,) = Execution.objects.all()
    assert execution.status == TaskStatus.IN_PROGRESS and execution.is_partial
    assert execution.success is None


SPLIT = "trainingdash__subagent_split.ndjson"  # a response written as two lines, a sub-agent
TOKEN_NAMES = {
    "inputTokens": "input_tokens",
    "outputTokens": "output_tokens",
    "cacheCreationInputTokens": "cache_creation_input_tokens",
    "cacheReadInputTokens": "cache_read_input_tokens",
}


def test_lines_of_one_response_are_one_message_as_in_a_transcript() -> None:
    lines = records(SPLIT)
    assistants = [r for r in lines if r["type"] == "assistant"]
    responses = {r["message"]["id"] for r in assistants}
    assert len(responses) < len(assistants)
    import_file(FIXTURES / SPLIT)

    execution = Execution.objects.get()
    others = sum(1 for r in lines if r["type"] != "assistant")
    assert execution.messages.count() == others + len(responses)
    for rid in responses:
        stored = execution.messages.get(payload__message__id=rid)
        blocks = [
            b for r in assistants if r["message"]["id"] == rid for b in r["message"]["content"]
        ]
        assert stored.payload["message"]["content"] == blocks
    answers = {
        block["tool_use_id"]: block["content"]
        for r in lines
        if r["type"] == "user" and isinstance(r["message"]["content"], list)
        for block in r["message"]["content"]
        if block.get("type") == "tool_result"
    }
    assert {c.tool_use_id: c.result for c in ToolCall.objects.all()} == answers


def test_token_totals_cover_every_model_as_the_cost_does() -> None:
    result = records(SPLIT)[-1]
    models = result["modelUsage"]
    import_file(FIXTURES / SPLIT)

    execution = Execution.objects.get()
    for camel, name in TOKEN_NAMES.items():
        assert getattr(execution, name) == sum(m[camel] for m in models.values())
    assert execution.input_tokens != result["usage"]["input_tokens"]  # main model only
    assert execution.cost_usd == result["total_cost_usd"]
    assert execution.usage["model_usage"] == models


def test_a_sub_agent_in_a_stream_json_log_is_counted_under_its_call() -> None:
    lines = records(SPLIT)
    spawned = [r for r in lines if r.get("parent_tool_use_id")]
    (spawner,) = {r["parent_tool_use_id"] for r in spawned}
    import_file(FIXTURES / SPLIT)

    execution = Execution.objects.get()
    (sub,) = execution.metadata["subagents"]
    assert (sub["tool_use_id"], sub["lines"]) == (spawner, len(spawned))
    inner = ToolCall.objects.get(parent_tool_use_id=spawner)
    assert ToolCall.objects.get(tool_use_id=spawner).name == "Agent" and inner.name == "Bash"


def test_a_stream_json_log_imported_twice_changes_nothing() -> None:
    import_file(FIXTURES / SPLIT)
    report = import_file(FIXTURES / SPLIT)

    assert report.skipped == 1 and Execution.objects.count() == 1
