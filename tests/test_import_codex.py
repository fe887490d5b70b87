"""Codex CLI rollouts: responses, tool calls and their outputs, tokens, model, cwd, the prompt."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from collection.importers import IMPORTERS, import_file, importer_for
from collection.importers.reading import read_head
from collection.models import AgentAction, Execution, TaskStatus, ToolCall, TrainingExample
from collection.viewer import build_trajectory
from collection.viewer.tree import Note, Turn
from exports.options import ExportOptions
from exports.records import load_records

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures" / "transcripts"
FIRST_TURN = FIXTURES / "codex__first_turn.jsonl"
SEARCH_AND_PATCH = FIXTURES / "codex__search_and_patch.jsonl"
CALL_TYPES = ("function_call", "custom_tool_call", "web_search_call")
OUTPUT_TYPES = ("function_call_output", "custom_tool_call_output")


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def _items(path: Path, *types: str) -> list[dict[str, Any]]:
    return [
        r["payload"]
        for r in _lines(path)
        if r["type"] == "response_item" and r["payload"]["type"] in types
    ]


def _token_totals(path: Path) -> list[dict[str, int]]:
    """Each distinct cumulative total, in order (the CLI repeats a total it already wrote)."""
    totals: list[dict[str, int]] = []
    for r in _lines(path):
        info = r["payload"].get("info") if r["payload"].get("type") == "token_count" else None
        if info and (not totals or info["total_token_usage"] != totals[-1]):
            totals.append(info["total_token_usage"])
    return totals


@pytest.mark.parametrize("path", [FIRST_TURN, SEARCH_AND_PATCH])
def test_a_rollout_is_recognised_as_codex(path: Path) -> None:
    assert importer_for(read_head(path)) is IMPORTERS["codex"]


def test_a_rollout_whose_first_line_outgrows_the_sniffed_head_is_still_codex(
    tmp_path: Path,
) -> None:
    lines = FIRST_TURN.read_text().splitlines(keepends=True)
    meta = json.loads(lines[0])
    meta["payload"]["base_instructions"]["text"] *= 4  # about 88 KB, over the 64 KiB head
    path = tmp_path / "rollout-long.jsonl"
    path.write_text(json.dumps(meta, separators=(",", ":")) + "\n" + "".join(lines[1:]))

    assert importer_for(read_head(path)) is IMPORTERS["codex"]


@pytest.mark.parametrize("path", [FIRST_TURN, SEARCH_AND_PATCH])
def test_every_tool_call_is_paired_with_its_output(path: Path) -> None:
    calls = [
        (number, r["payload"])
        for number, r in enumerate(_lines(path), 1)
        if r["type"] == "response_item" and r["payload"]["type"] in CALL_TYPES
    ]
    outputs = {o["call_id"]: o["output"] for o in _items(path, *OUTPUT_TYPES)}
    report = import_file(path)

    assert report.ok and report.imported == 1
    assert ToolCall.objects.count() == len(calls)
    for number, call in calls:
        # Web search calls are written without an id: the importer keys them by line.
        call_id = call.get("call_id") or f"line-{number}"
        stored = ToolCall.objects.get(tool_use_id=call_id)
        if call["type"] == "function_call":
            assert (stored.name, stored.input) == (call["name"], json.loads(call["arguments"]))
            assert stored.result == outputs[call_id]
        elif call["type"] == "custom_tool_call":
            assert (stored.name, stored.input) == (call["name"], {"input": call["input"]})
            assert stored.result == outputs[call_id]
        else:  # a web search runs on the server: its status is all the rollout says
            assert (stored.name, stored.input) == ("web_search", call["action"])
            assert stored.result == call["status"]
        assert stored.answered_in_id is not None


def test_the_first_turn_keeps_session_model_cwd_prompt_and_tokens() -> None:
    lines = _lines(FIRST_TURN)
    meta = lines[0]["payload"]
    model = next(r["payload"]["model"] for r in lines if r["type"] == "turn_context")
    prompt = next(
        r["payload"]["message"] for r in lines if r["payload"].get("type") == "user_message"
    )
    total = _token_totals(FIRST_TURN)[-1]
    complete = next(r["payload"] for r in lines if r["payload"].get("type") == "task_complete")

    import_file(FIRST_TURN)

    (execution,) = Execution.objects.all()
    assert execution.session_id == meta["id"]
    assert execution.model == model
    assert execution.metadata["cwd"] == meta["cwd"]
    assert execution.metadata["importer"] == "codex"
    assert (execution.task.name, execution.task.description) == (prompt, prompt)
    assert execution.input_tokens == total["input_tokens"] - total["cached_input_tokens"]
    assert execution.cache_read_input_tokens == total["cached_input_tokens"]
    assert execution.output_tokens == total["output_tokens"]
    assert execution.total_tokens == total["total_tokens"]
    assert (execution.status, execution.is_partial) == (TaskStatus.COMPLETED, False)
    assert execution.outcome == complete["last_agent_message"]
    started = execution.started_at
    assert started is not None and started.isoformat()[:19] == lines[0]["timestamp"][:19]


def test_each_response_is_one_assistant_message_with_its_own_usage() -> None:
    totals = _token_totals(SEARCH_AND_PATCH)
    import_file(SEARCH_AND_PATCH)

    responses = list(
        Execution.objects.get().messages.filter(type="assistant").order_by("seq", "id")
    )
    with_usage = [
        m.payload["message"]["usage"] for m in responses if "usage" in m.payload["message"]
    ]
    # The first total in this excerpt continues the session before it: each later response's
    # usage is the step between two totals.
    for before, after, usage in zip(totals, totals[1:], with_usage[1:], strict=False):
        assert usage["output_tokens"] == after["output_tokens"] - before["output_tokens"]
    assert len(with_usage) == len(totals)
    blocks = [b for m in responses for b in m.payload["message"]["content"]]
    assert sum(b["type"] == "tool_use" for b in blocks) == len(
        _items(SEARCH_AND_PATCH, *CALL_TYPES)
    )
    texts = [b["text"] for b in blocks if b["type"] == "text"]
    assert texts == [
        c["text"]
        for m in _items(SEARCH_AND_PATCH, "message")
        if m["role"] == "assistant"
        for c in m["content"]
    ]


def test_reasoning_summaries_become_the_reasoning_of_the_actions_that_follow() -> None:
    import_file(SEARCH_AND_PATCH)

    patch = AgentAction.objects.get(tool_name="apply_patch")
    items = [r["payload"] for r in _lines(SEARCH_AND_PATCH) if r["type"] == "response_item"]
    index = next(i for i, p in enumerate(items) if p.get("name") == "apply_patch")
    reasoning = items[index - 1]
    assert reasoning["type"] == "reasoning"
    assert patch.reasoning == "\n\n".join(s["text"] for s in reasoning["summary"])


def test_context_the_cli_writes_is_not_the_prompt() -> None:
    import_file(FIRST_TURN)

    execution = Execution.objects.get()
    users = [m.payload["message"]["content"] for m in execution.messages.filter(type="user")]
    assert "show tools" in users
    assert not any(isinstance(u, str) and u.startswith("# AGENTS.md") for u in users)
    context = execution.messages.filter(type="system", subtype="codex_context")
    assert context.count() == 1
    developer = execution.messages.filter(type="system", subtype="codex_developer")
    assert developer.count() == sum(
        1 for m in _items(FIRST_TURN, "message") if m["role"] == "developer"
    )


def test_a_cut_last_line_is_reported_as_truncated_and_the_turn_as_in_progress(
    tmp_path: Path,
) -> None:
    raw = FIRST_TURN.read_bytes()
    lines = raw.splitlines(keepends=True)
    # Cut inside the assistant's answer: the task_complete after it never arrives.
    answer = next(i for i, line in enumerate(lines) if b'"role":"assistant"' in line)
    path = tmp_path / "rollout-cut.jsonl"
    path.write_bytes(b"".join(lines[:answer]) + lines[answer][:200])

    report = import_file(path)

    (execution,) = Execution.objects.all()
    assert report.imported == 1
    problems = execution.metadata["import_problems"]
    assert problems == [f"{path}:{answer + 1}: truncated: the file ends inside this line"]
    assert (execution.status, execution.is_partial) == (TaskStatus.IN_PROGRESS, True)


def test_reimporting_a_grown_rollout_adds_only_the_new_lines(tmp_path: Path) -> None:
    lines = FIRST_TURN.read_bytes().splitlines(keepends=True)
    path = tmp_path / "rollout-growing.jsonl"
    path.write_bytes(b"".join(lines[:12]))
    import_file(path)
    first = Execution.objects.get().messages.count()

    path.write_bytes(b"".join(lines))
    report = import_file(path)

    assert report.updated == 1 and Execution.objects.count() == 1
    again = import_file(FIRST_TURN)  # same session id from another path: the same execution
    assert Execution.objects.count() == 1 and again.imported == 0
    assert Execution.objects.get().messages.count() > first
    assert ToolCall.objects.filter(answered_in__isnull=True).count() == 0


def test_the_viewer_shows_each_response_as_a_turn_with_its_tool_cards() -> None:
    responses_with_usage = len(_token_totals(FIRST_TURN))
    report = import_file(FIRST_TURN)
    trajectory = build_trajectory(Execution.objects.get(pk=report.execution_ids[0]))

    turns = [item for item in trajectory.thread.items if isinstance(item, Turn)]
    cards = [b.card for t in turns for s in t.steps for b in s.blocks if b.card is not None]
    assert [c.tool_use_id for c in cards] == [
        c["call_id"] for c in _items(FIRST_TURN, "function_call")
    ]
    assert sum(1 for t in turns if t.usage.output) == responses_with_usage
    prompts = [
        i.text for i in trajectory.thread.items if isinstance(i, Note) and i.kind == "prompt"
    ]
    assert prompts == ["show tools"]


def test_an_export_reads_the_calls_outputs_and_answer_of_a_rollout() -> None:
    import_file(FIRST_TURN)
    example = TrainingExample.objects.get()

    (record,) = load_records(TrainingExample.objects.filter(pk=example.pk), ExportOptions())

    calls = [c for step in record.steps for c in step.tool_calls]
    outputs = {o["call_id"]: o["output"] for o in _items(FIRST_TURN, *OUTPUT_TYPES)}
    assert [(c.id, c.output) for c in calls] == list(outputs.items())
    assert record.prompt == "show tools"
    assert record.system.startswith("You are Codex")
    complete = next(
        r["payload"] for r in _lines(FIRST_TURN) if r["payload"].get("type") == "task_complete"
    )
    assert record.final_text == complete["last_agent_message"]


def test_a_rollout_whose_turn_has_no_task_complete_yet_is_in_progress() -> None:
    lines = _lines(SEARCH_AND_PATCH)
    assert [r["payload"].get("type") for r in lines].count("task_complete") == 0

    import_file(SEARCH_AND_PATCH)

    execution = Execution.objects.get()
    assert (execution.status, execution.is_partial) == (TaskStatus.IN_PROGRESS, True)
    assert execution.task.name == next(
        r["payload"]["message"] for r in lines if r["payload"].get("type") == "user_message"
    )


def test_a_rollout_without_its_session_meta_line_is_the_session_its_file_name_says(
    tmp_path: Path,
) -> None:
    lines = FIRST_TURN.read_bytes().splitlines(keepends=True)
    session_id = json.loads(lines[0])["payload"]["id"]
    path = tmp_path / f"rollout-2026-05-11T11-26-55-{session_id}.jsonl"
    path.write_bytes(b"".join(lines[1:]))

    import_file(path)
    report = import_file(FIRST_TURN)

    assert report.updated == 1
    (execution,) = Execution.objects.all()
    assert execution.session_id == session_id
