"""ADP export: rows valid against the Agent Data Protocol's schema (mirrored models), tool
actions linked to their observations, outputs never cut, a dataset folder with metadata.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from collection.importers import import_file
from collection.models import TrainingExample
from collection.sessions.trajectory import TrajectoryRecorder
from exports.formats import FORMATS
from exports.formats.adp import (
    AdpFormat,
    ApiAction,
    CodeAction,
    DatasetMetadata,
    MessageAction,
    TextObservation,
    Trajectory,
)
from exports.options import ExportOptions
from exports.records import load_records
from tests.factories import (
    assistant_payload,
    make_example,
    make_execution,
    make_task,
    result_payload,
    tool_use,
)

FIXTURES = Path(__file__).parent / "fixtures" / "transcripts"
pytestmark = pytest.mark.django_db


def _session(*, output: str = "1 failed", subagent: bool = False) -> TrainingExample:
    """Prompt; thinking + text + Bash; a Read; optionally a Task with a sub-agent; an answer."""
    execution = make_execution(make_task(), success=True)
    rec = TrajectoryRecorder(execution)
    rec.record({"type": "user", "uuid": "prompt", "message": {"content": "Fix the tests"}})
    thinking = {"type": "thinking", "thinking": "Run the suite first."}
    text = {"type": "text", "text": "Running the tests."}
    bash = tool_use("toolu_1", "Bash", command="pytest -q", timeout=60000)
    rec.record(assistant_payload([thinking, text, bash], response="m1"))
    rec.record(result_payload("toolu_1", output, is_error=True))
    rec.record(assistant_payload([tool_use("toolu_2", "Read", file_path="m.py")], response="m2"))
    rec.record(result_payload("toolu_2", "def add(a, b):\n    return a - b"))
    if subagent:
        call = tool_use("toolu_task", "Task", description="check", prompt="Check m.py")
        rec.record(assistant_payload([call], response="m3"))
        note = {"type": "text", "text": "It subtracts."}
        rec.record(assistant_payload([note], response="s1", parent="toolu_task"))
        rec.record(result_payload("toolu_task", "It subtracts."))
    rec.record(assistant_payload([{"type": "text", "text": "Fixed add()."}], response="m9"))
    return make_example(execution)


def _rows(options: ExportOptions | None = None) -> list[dict[str, Any]]:
    options = options or ExportOptions()
    records = load_records(TrainingExample.objects.all(), options)
    return list(FORMATS["adp"].rows(records, options))


def test_the_registry_lists_the_adp_format() -> None:
    assert isinstance(FORMATS["adp"], AdpFormat)


def test_a_session_becomes_alternating_actions_and_observations() -> None:
    example = _session()

    (row,) = _rows()

    assert FORMATS["adp"].validate(row) == []
    trajectory = Trajectory.model_validate(row)
    assert trajectory.id == f"ex-{example.pk}"
    assert trajectory.schema_version == "1.5.0"
    assert [type(item) for item in trajectory.content] == [
        TextObservation,
        CodeAction,
        TextObservation,
        ApiAction,
        TextObservation,
        MessageAction,
    ]
    prompt, bash, bash_out, read, read_out, answer = trajectory.content
    assert isinstance(prompt, TextObservation) and isinstance(bash_out, TextObservation)
    assert isinstance(read_out, TextObservation)
    assert (prompt.source, prompt.content) == ("user", "Fix the tests")
    assert isinstance(bash, CodeAction)
    assert (bash.language, bash.content, bash.description) == (
        "bash",
        "pytest -q",
        "Running the tests.",
    )
    assert bash.reasoning_content is None  # thinking only when asked
    assert (bash_out.source, bash_out.tool_call_id, bash.tool_call_id) == (
        "environment",
        "toolu_1",
        "toolu_1",
    )
    assert isinstance(read, ApiAction)
    assert (read.function, read.kwargs, read.tool_call_id) == (
        "Read",
        {"file_path": "m.py"},
        "toolu_2",
    )
    assert read_out.content == "def add(a, b):\n    return a - b"
    assert isinstance(answer, MessageAction) and answer.content == "Fixed add()."
    assert trajectory.available_code_languages == ["bash"]
    assert row["details"]["failed_tool_calls"] == ["toolu_1"]
    assert row["details"]["success"] is True


def test_thinking_is_the_first_actions_reasoning_content_when_asked() -> None:
    _session()

    (row,) = _rows(ExportOptions(include_thinking=True))

    assert row["content"][1]["reasoning_content"] == "Run the suite first."
    assert FORMATS["adp"].validate(row) == []


def test_a_long_tool_output_is_kept_whole() -> None:
    output = "\n".join(f"line {n}: " + "x" * 80 for n in range(2000))
    _session(output=output)

    (row,) = _rows()

    observation = row["content"][2]
    assert observation["content"] == output
    assert not observation["content"].endswith("...")
    assert FORMATS["adp"].validate(row) == []


def test_a_sub_agent_is_its_own_trajectory_linked_in_details() -> None:
    example = _session(subagent=True)

    coordinator, sub = _rows()

    assert FORMATS["adp"].validate(coordinator) == []
    assert FORMATS["adp"].validate(sub) == []
    assert sub["id"] == f"ex-{example.pk}.agent-toolu_task"
    assert sub["details"]["parent_id"] == coordinator["id"]
    assert sub["details"]["spawned_by"] == "toolu_task"
    assert sub["content"][0] == {
        "class_": "text_observation",
        "content": "Check m.py",
        "source": "user",
    }


def test_write_makes_a_dataset_folder_whose_metadata_declares_the_tools(tmp_path: Path) -> None:
    _session(subagent=True)
    fmt = FORMATS["adp"]

    files = fmt.write(_rows(), tmp_path)

    assert [f.name for f in files] == ["full_std.jsonl", "metadata.json"]
    lines = files[0].read_bytes().splitlines()
    trajectories = [Trajectory.model_validate(orjson.loads(line)) for line in lines]
    metadata = DatasetMetadata.model_validate(orjson.loads(files[1].read_bytes()))
    declared = {tool.function.name for tool in metadata.custom_tools}
    assert declared == {"Read", "Task"}
    used = {i.function for t in trajectories for i in t.content if isinstance(i, ApiAction)}
    assert used == declared  # upstream's converters refuse an undeclared api_action
    assert metadata.code_enabled == ["bash"]
    read = next(t.function for t in metadata.custom_tools if t.function.name == "Read")
    assert read.parameters["required"] == ["file_path"]


def test_the_same_examples_give_the_same_bytes(tmp_path: Path) -> None:
    _session(subagent=True)
    fmt = FORMATS["adp"]

    first = fmt.write(_rows(), tmp_path / "a")
    second = fmt.write(_rows(), tmp_path / "b")

    assert [f.read_bytes() for f in first] == [f.read_bytes() for f in second]


def test_real_claude_code_sessions_export_valid() -> None:
    for name in ("spotter__tool_heavy.jsonl", "spotter__subagent.jsonl"):
        import_file(FIXTURES / name)

    rows = _rows()

    assert len(rows) > TrainingExample.objects.count()  # the sub-agent is a row of its own
    assert all(FORMATS["adp"].validate(row) == [] for row in rows)
    calls = sum(1 for r in rows for i in r["content"] if i["class_"] != "text_observation")
    assert calls > 10


def test_validate_reports_broken_links_and_undeclared_tools() -> None:
    _session()
    (row,) = _rows()
    fmt = FORMATS["adp"]

    unlinked = orjson.loads(orjson.dumps(row))
    unlinked["content"][2]["tool_call_id"] = "toolu_other"
    no_id = orjson.loads(orjson.dumps(row))
    del no_id["content"][3]["tool_call_id"]
    undeclared = orjson.loads(orjson.dumps(row))
    undeclared["details"]["tools"] = []
    wrong_source = orjson.loads(orjson.dumps(row))
    wrong_source["content"][0]["source"] = "system"

    assert fmt.validate(unlinked)
    assert any("no id" in p for p in fmt.validate(no_id))
    assert fmt.validate(undeclared) == ["api_action 'Read' has no schema in details.tools"]
    assert fmt.validate(wrong_source)
