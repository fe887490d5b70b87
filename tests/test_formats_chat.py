"""The chat formats (jsonl, conversations, instruct, messages, evaluation), each read back by the
rules of the consumer that reads it: a strict OpenAI validator, LLaMA-Factory's ShareGPT and
Alpaca converters' rules, TRL's conversational-with-tools type as a JSON schema, and `datasets`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import datasets
import jsonschema
import orjson
import pytest

from collection.importers import import_file
from collection.models import StepMark, TaskStatus, TrainingExample
from collection.sessions.trajectory import TrajectoryRecorder
from exports.formats import FORMATS
from exports.formats.hf_messages import TRL_CONVERSATIONAL_WITH_TOOLS
from exports.formats.openai_chat import validate_openai_row
from exports.formats.sharegpt import validate_sharegpt_row
from exports.options import ExportOptions
from exports.pipeline import ExportResult, run_export
from tests.factories import (
    assistant_payload,
    make_example,
    make_execution,
    make_task,
    make_trajectory,
    result_payload,
    tool_use,
)

FIXTURES = Path(__file__).parent / "fixtures" / "transcripts"
REAL = (
    "spotter__subagent.jsonl",
    "spotter__tool_heavy.jsonl",
    "sweagent__function_calling_simple.traj",
)

pytestmark = pytest.mark.django_db


def export(name: str, directory: Path, **options: Any) -> ExportResult:
    return run_export(TrainingExample.objects.all(), name, ExportOptions(**options), directory)


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def real_sessions() -> None:
    for name in REAL:
        import_file(FIXTURES / name)


def marked_session() -> TrainingExample:
    """Two Bash turns and a closing answer; the second turn marked bad, its call failed."""
    example = make_example(make_trajectory(turns=2))
    bad = example.execution.messages.filter(type="assistant").order_by("seq")[1]
    StepMark.objects.create(example=example, message=bad, comment="wrong case")
    failed = example.execution.tool_calls.get(tool_use_id="toolu_2")
    failed.is_error, failed.result = True, "exit status 1"
    failed.save()
    return example


def two_exchanges() -> TrainingExample:
    run = make_execution(status=TaskStatus.IN_PROGRESS, task=make_task())
    recorder = TrajectoryRecorder(run)
    recorder.record({"type": "user", "uuid": "u1", "message": {"content": "Fix it"}})
    recorder.record(assistant_payload([tool_use("t1", "Read", file_path="a.py")], response="m1"))
    recorder.record(result_payload("t1", "x = 1"))
    recorder.record(assistant_payload([{"type": "text", "text": "Which line?"}], response="m2"))
    recorder.record({"type": "user", "uuid": "u2", "message": {"content": "Line 42"}})
    recorder.record(assistant_payload([{"type": "text", "text": "Fixed line 42."}], response="m3"))
    return make_example(run)


# --- jsonl: OpenAI chat fine-tuning ------------------------------------------------------------


def test_jsonl_rows_pass_the_strict_openai_validator_on_real_sessions(tmp_path: Path) -> None:
    real_sessions()
    result = export("jsonl", tmp_path)
    rows = jsonl(tmp_path / "data.jsonl")
    assert len(rows) == result.written == 4  # three sessions and the sub-agent's conversation
    for row in rows:
        assert validate_openai_row(row) == []
        for message in row["messages"]:
            for call in message.get("tool_calls", []):
                assert isinstance(json.loads(call["function"]["arguments"]), dict)


def test_jsonl_weights_bad_steps_zero_and_prefixes_failed_tool_output(tmp_path: Path) -> None:
    marked_session()
    export("jsonl", tmp_path)
    (row,) = jsonl(tmp_path / "data.jsonl")
    assistants = [m for m in row["messages"] if m["role"] == "assistant"]
    assert [m["weight"] for m in assistants] == [1, 0, 1]
    tools = [m for m in row["messages"] if m["role"] == "tool"]
    assert [t["tool_call_id"] for t in tools] == ["toolu_1", "toolu_2"]
    assert tools[1]["content"] == "Error: exit status 1"
    assert assistants[0]["tool_calls"][0] == {
        "id": "toolu_1",
        "type": "function",
        "function": {"name": "Bash", "arguments": '{"command":"pytest -k case_1"}'},
    }
    (bash,) = row["tools"]
    assert bash["type"] == "function" and bash["function"]["name"] == "Bash"
    assert bash["function"]["parameters"]["required"] == ["command"]


def test_jsonl_carries_thinking_in_reasoning_content_only_when_asked(tmp_path: Path) -> None:
    make_example(make_trajectory(turns=1))
    export("jsonl", tmp_path / "off")
    export("jsonl", tmp_path / "on", include_thinking=True)
    (off,) = jsonl(tmp_path / "off" / "data.jsonl")
    (on,) = jsonl(tmp_path / "on" / "data.jsonl")
    assert all("reasoning_content" not in m for m in off["messages"])
    assert on["messages"][1]["reasoning_content"] == "Turn 1: run the next case."
    assert validate_openai_row(on) == []


def test_the_openai_validator_rejects_what_the_api_rejects() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "Bash", "arguments": "{}"}}
    tools = [{"type": "function", "function": {"name": "Bash", "parameters": {"type": "object"}}}]
    user = {"role": "user", "content": "go"}
    asks: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [call]}
    answer = {"role": "tool", "tool_call_id": "c1", "content": "ok"}
    done = {"role": "assistant", "content": "done"}
    ok: dict[str, Any] = {"messages": [user, asks, answer, done], "tools": tools}
    assert validate_openai_row(ok) == []
    unanswered = ok | {"messages": [user, asks, done]}
    assert any("not answered" in p for p in validate_openai_row(unanswered))
    as_object = orjson.loads(orjson.dumps(ok))
    as_object["messages"][1]["tool_calls"][0]["function"]["arguments"] = {}
    assert any("JSON string" in p for p in validate_openai_row(as_object))
    unknown_tool = ok | {"tools": []}
    assert any("not in tools" in p for p in validate_openai_row(unknown_tool))
    late_system = ok | {"messages": [user, {"role": "system", "content": "x"}, asks, answer, done]}
    assert any("after the conversation began" in p for p in validate_openai_row(late_system))
    stray = ok | {"messages": [user, {"role": "tool", "tool_call_id": "c9", "content": "?"}]}
    assert any("answers no pending call" in p for p in validate_openai_row(stray))


# --- conversations: ShareGPT for LLaMA-Factory ------------------------------------------------


def llama_factory_accepts(row: dict[str, Any], info: dict[str, Any]) -> bool:
    """LLaMA-Factory's SharegptDatasetConverter and FunctionFormatter, as their code reads a row:
    tags at odd / even positions, an even count, function_call values as JSON name+arguments."""
    columns, tags = info["columns"], info["tags"]
    odd = (tags["user_tag"], tags["observation_tag"])
    even = (tags["assistant_tag"], tags["function_tag"])
    turns = row[columns["messages"]]
    if any(t[tags["role_tag"]] not in (odd, even)[n % 2] for n, t in enumerate(turns)):
        return False
    if len(turns) % 2:
        return False
    for turn in turns:
        if turn[tags["role_tag"]] == tags["function_tag"]:
            calls = json.loads(turn[tags["content_tag"]])
            for call in calls if isinstance(calls, list) else [calls]:
                json.dumps(call["arguments"])
                assert isinstance(call["name"], str)
    return isinstance(json.loads(row[columns["tools"]]), list)


def test_conversations_follow_llama_factorys_rules_and_register_the_dataset(tmp_path: Path) -> None:
    real_sessions()
    marked_session()
    result = export("conversations", tmp_path)
    assert [p.name for p in result.files] == ["data.json", "dataset_info.json"]
    info = json.loads((tmp_path / "dataset_info.json").read_text())["trainingdash_conversations"]
    assert info["file_name"] == "data.json" and info["formatting"] == "sharegpt"
    rows = json.loads((tmp_path / "data.json").read_text())
    assert len(rows) == result.written == 5
    for row in rows:
        assert llama_factory_accepts(row, info)
        assert validate_sharegpt_row(row) == []
    # LLaMA-Factory reads the file through datasets' json builder
    loaded = datasets.load_dataset("json", data_files=str(tmp_path / "data.json"), split="train")
    assert loaded.num_rows == 5 and set(loaded.column_names) == {"conversations", "system", "tools"}


def test_conversations_put_calls_and_outputs_in_their_own_turns(tmp_path: Path) -> None:
    marked_session()
    export("conversations", tmp_path, include_thinking=True)
    (row,) = json.loads((tmp_path / "data.json").read_text())
    roles = [t["from"] for t in row["conversations"]]
    assert roles == ["human", "function_call", "observation", "function_call", "observation", "gpt"]
    assert json.loads(row["conversations"][1]["value"]) == {
        "name": "Bash",
        "arguments": {"command": "pytest -k case_1"},
    }
    assert row["conversations"][4]["value"] == "Error: exit status 1"
    assert "Turn 1" not in json.dumps(row)  # thinking has no place in ShareGPT
    assert json.loads(row["tools"])[0]["name"] == "Bash"


def test_the_sharegpt_validator_catches_turns_out_of_place() -> None:
    row = {"conversations": [{"from": "human", "value": "hi"}, {"from": "human", "value": "again"}],
           "system": "", "tools": "[]"}  # fmt: skip
    assert any("expected one of" in p for p in validate_sharegpt_row(row))
    odd = row | {"conversations": [{"from": "human", "value": "hi"}]}
    assert any("odd number of turns" in p for p in validate_sharegpt_row(odd))


# --- instruct: Alpaca -------------------------------------------------------------------------


def test_instruct_turns_a_multi_turn_session_into_one_record_with_history(tmp_path: Path) -> None:
    two_exchanges()
    export("instruct", tmp_path)
    (row,) = jsonl(tmp_path / "data.jsonl")
    assert row == {
        "instruction": "Line 42",
        "input": "",
        "output": "Fixed line 42.",
        "system": "",
        "history": [["Fix it", "Which line?"]],
    }
    assert FORMATS["instruct"].validate(row) == []


def test_instruct_rows_of_real_sessions_are_what_llama_factorys_alpaca_reader_takes(
    tmp_path: Path,
) -> None:
    real_sessions()
    result = export("instruct", tmp_path)
    rows = jsonl(tmp_path / "data.jsonl")
    assert len(rows) == result.written == 4
    for row in rows:
        assert row["instruction"].strip() and row["output"].strip()
        assert all(len(pair) == 2 for pair in row["history"])
    assert rows[0]["output"].startswith("## Beads Created")  # the session's final answer


# --- messages: TRL conversational with tools --------------------------------------------------


def test_messages_rows_are_trls_conversational_type_with_tools(tmp_path: Path) -> None:
    real_sessions()
    marked_session()
    result = export("messages", tmp_path, include_thinking=True)
    rows = jsonl(tmp_path / "data.jsonl")
    assert len(rows) == result.written == 5
    schema = jsonschema.Draft202012Validator(TRL_CONVERSATIONAL_WITH_TOOLS)
    for row in rows:
        schema.validate(row)
        names = {tool["function"]["name"] for tool in row["tools"]}
        for message in row["messages"]:
            for call in message.get("tool_calls", []):
                assert isinstance(call["function"]["arguments"], dict)
                assert call["function"]["name"] in names
    marked = rows[-1]["messages"]
    assert marked[2] == {"role": "tool", "tool_call_id": "toolu_1", "name": "Bash",
                         "content": "case_1 line 0\ncase_1 line 1\ncase_1 line 2"}  # fmt: skip
    assert marked[1]["reasoning_content"] == "Turn 1: run the next case."


def test_the_messages_file_loads_with_datasets(tmp_path: Path) -> None:
    real_sessions()
    export("messages", tmp_path)
    path = tmp_path / "data.jsonl"
    loaded = datasets.load_dataset("json", data_files=str(path), split="train")
    rows = jsonl(path)
    assert loaded.num_rows == len(rows) == 4
    first = loaded[0]["messages"]
    assert [m["role"] for m in first] == [m["role"] for m in rows[0]["messages"]]
    call = next(m for m in first if m.get("tool_calls"))["tool_calls"][0]
    assert call["function"]["name"] == "WebFetch"
    in_memory = datasets.Dataset.from_list(rows)
    assert in_memory.num_rows == 4 and set(in_memory.column_names) == {"messages", "tools"}


# --- evaluation -------------------------------------------------------------------------------


def test_the_evaluation_set_holds_task_verifier_and_reference_trajectory(tmp_path: Path) -> None:
    task = make_task(metadata={"verifier": "pytest -q"}, constraints=["don't touch tests/"])
    golden = make_example(make_trajectory(make_execution(task)), is_golden=True)
    make_example(make_trajectory(make_execution(task, session_id="other")))
    result = export("evaluation", tmp_path, golden_only=True)
    assert result.left_out == {"not golden": 1}
    (item,) = json.loads((tmp_path / "eval_dataset.json").read_text())
    assert item["id"] == f"ex-{golden.pk}"
    assert (item["prompt"], item["verifier"]) == ("Fix the tests", "pytest -q")
    assert item["expected_outcomes"] == ["tests pass"]
    assert item["constraints"] == ["don't touch tests/"]
    assert item["task"]["name"] == "Fix failing test"
    assert item["reference_trajectory"][0] == {"role": "user", "content": "Fix the tests"}
    assert item["reference_trajectory"][-1]["content"] == "All cases pass."
    assert item["reference_answer"] == "All cases pass."
