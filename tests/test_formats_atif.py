"""ATIF export: Harbor's trajectory schema (mirrored models), sub-agents embedded and linked,
one trajectory.json per session, deterministic bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from collection.importers import import_file, import_paths
from collection.models import Execution, TrainingExample
from collection.review import mark_step
from collection.sessions.trajectory import TrajectoryRecorder
from exports.formats import FORMATS
from exports.formats.atif import AtifFormat, Trajectory
from exports.formats.base import ExportError
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


def _session(*, subagent: bool = False, thinking: str = "") -> TrainingExample:
    """A session: a prompt, a Bash call, optionally a Task call whose sub-agent reads a file,
    then an answer."""
    execution = make_execution(make_task(), success=True, cost_usd=0.25)
    rec = TrajectoryRecorder(execution)
    rec.record({"type": "user", "uuid": "prompt", "message": {"content": "Fix the tests"}})
    blocks: list[dict[str, Any]] = [{"type": "text", "text": "Run them first."}]
    if thinking:
        blocks.insert(0, {"type": "thinking", "thinking": thinking})
    call = tool_use("toolu_1", "Bash", command="pytest")
    cache = {"cache_read_input_tokens": 30, "cache_creation_input_tokens": 20}
    payload = assistant_payload([*blocks, call], response="m1")
    payload["message"]["usage"] |= cache
    rec.record(payload)
    rec.record(result_payload("toolu_1", "1 failed", is_error=True))
    if subagent:
        call = tool_use("toolu_task", "Task", description="look", prompt="Read math.py")
        rec.record(assistant_payload([call], response="m2"))
        read = tool_use("toolu_sub", "Read", file_path="math.py")
        rec.record(assistant_payload([read], response="s1", parent="toolu_task"))
        rec.record(result_payload("toolu_sub", "def add(a, b): ...", parent="toolu_task"))
        report = {"type": "text", "text": "add() subtracts."}
        rec.record(assistant_payload([report], response="s2", parent="toolu_task"))
        rec.record(result_payload("toolu_task", "add() subtracts."))
    rec.record(assistant_payload([{"type": "text", "text": "Fixed."}], response="m3"))
    return make_example(execution, quality_score=0.8)


def _rows(options: ExportOptions | None = None) -> list[dict[str, Any]]:
    options = options or ExportOptions()
    records = load_records(TrainingExample.objects.all(), options)
    return list(FORMATS["atif"].rows(records, options))


def test_the_registry_lists_the_atif_format() -> None:
    assert isinstance(FORMATS["atif"], AtifFormat)


def test_a_session_becomes_a_valid_atif_trajectory() -> None:
    example = _session()

    (row,) = _rows()

    assert FORMATS["atif"].validate(row) == []
    trajectory = Trajectory.model_validate(row)
    assert trajectory.schema_version == "ATIF-v1.7"
    assert trajectory.trajectory_id == f"ex-{example.pk}"
    assert trajectory.session_id == f"execution-{example.execution_id}"
    assert [s.source for s in trajectory.steps] == ["user", "agent", "agent"]
    assert trajectory.steps[0].message == "Fix the tests"
    first = trajectory.steps[1]
    assert first.message == "Run them first."
    assert first.tool_calls is not None and first.observation is not None
    assert first.tool_calls[0].model_dump(exclude_none=True) == {
        "tool_call_id": "toolu_1",
        "function_name": "Bash",
        "arguments": {"command": "pytest"},
    }
    (result,) = first.observation.results
    assert (result.source_call_id, result.content, result.extra) == (
        "toolu_1",
        "1 failed",
        {"is_error": True},
    )
    # ATIF's prompt_tokens count cached input too; cached_tokens are the cache hits.
    assert first.metrics is not None
    assert (first.metrics.prompt_tokens, first.metrics.cached_tokens) == (150, 30)
    assert first.metrics.completion_tokens == 50
    assert trajectory.final_metrics is not None
    assert trajectory.final_metrics.total_steps == 3
    assert trajectory.final_metrics.total_prompt_tokens == 150 + 100
    assert trajectory.final_metrics.total_cost_usd == 0.25
    assert trajectory.agent.model_name == "claude-sonnet-4-5"
    tools = trajectory.agent.tool_definitions or []
    assert tools[0]["function"]["name"] == "Bash"


def test_thinking_is_reasoning_content_only_when_asked() -> None:
    _session(thinking="The test fails on add().")

    (without,) = _rows()
    (with_thinking,) = _rows(ExportOptions(include_thinking=True))

    assert "reasoning_content" not in without["steps"][1]
    assert with_thinking["steps"][1]["reasoning_content"] == "The test fails on add()."
    assert FORMATS["atif"].validate(with_thinking) == []


def test_a_bad_step_mark_travels_with_its_step(reviewer) -> None:
    example = _session()
    first = example.execution.messages.get(uuid="uuid-m1")
    mark_step(example, first, reviewer, "ran the whole suite")

    (row,) = _rows()

    assert row["steps"][1]["extra"] == {"review": {"bad": True, "comment": "ran the whole suite"}}
    assert "extra" not in row["steps"][2]


def test_sub_agents_are_embedded_and_referenced_from_their_task_call() -> None:
    example = _session(subagent=True)

    (row,) = _rows()  # one file per session, its sub-agent inside

    assert FORMATS["atif"].validate(row) == []
    trajectory = Trajectory.model_validate(row)
    (sub,) = trajectory.subagent_trajectories or []
    sub_id = f"ex-{example.pk}.agent-toolu_task"
    assert sub.trajectory_id == sub_id
    assert sub.session_id is None  # inherits the coordinator's run
    assert [s.source for s in sub.steps] == ["user", "agent", "agent"]
    assert sub.steps[0].message == "Read math.py"
    assert sub.extra is not None and sub.extra["parent_id"] == f"ex-{example.pk}"
    assert sub.final_metrics is not None and sub.final_metrics.total_cost_usd is None
    task_step = trajectory.steps[2]
    assert task_step.tool_calls is not None and task_step.observation is not None
    assert task_step.tool_calls[0].function_name == "Task"
    (result,) = task_step.observation.results
    assert result.content == "add() subtracts."
    assert [ref.trajectory_id for ref in result.subagent_trajectory_ref or []] == [sub_id]


def test_without_sub_agents_the_task_call_has_no_reference() -> None:
    _session(subagent=True)

    (row,) = _rows(ExportOptions(subagents="coordinator_only"))

    assert "subagent_trajectories" not in row
    results = [r for s in row["steps"] for r in (s.get("observation") or {}).get("results", [])]
    assert all("subagent_trajectory_ref" not in r for r in results)
    assert FORMATS["atif"].validate(row) == []


def test_a_real_claude_code_session_with_a_sub_agent_exports_valid() -> None:
    import_file(FIXTURES / "spotter__subagent.jsonl")

    rows = _rows()

    assert len(rows) == TrainingExample.objects.count() == 1
    (row,) = rows
    assert FORMATS["atif"].validate(row) == []
    assert len(row["subagent_trajectories"]) >= 1
    refs = [
        ref["trajectory_id"]
        for s in row["steps"]
        for r in (s.get("observation") or {}).get("results", [])
        for ref in r.get("subagent_trajectory_ref", [])
    ]
    assert refs and set(refs) <= {sub["trajectory_id"] for sub in row["subagent_trajectories"]}


def test_write_puts_one_trajectory_json_per_session_and_is_deterministic(tmp_path: Path) -> None:
    first, second = _session(), _session(subagent=True)
    fmt = FORMATS["atif"]

    files = fmt.write(_rows(), tmp_path / "a")
    again = fmt.write(_rows(), tmp_path / "b")

    expected = [f"trajectories/ex-{e.pk}/trajectory.json" for e in (first, second)]
    assert [str(f.relative_to(tmp_path / "a")) for f in files] == expected
    assert [f.read_bytes() for f in files] == [f.read_bytes() for f in again]
    loaded = orjson.loads(files[1].read_bytes())
    assert Trajectory.model_validate(loaded).subagent_trajectories


def test_write_refuses_an_id_that_is_not_a_plain_name(tmp_path: Path) -> None:
    _session()
    (row,) = _rows()

    with pytest.raises(ExportError):
        FORMATS["atif"].write([row | {"trajectory_id": "../escape"}], tmp_path)
    assert not (tmp_path.parent / "escape").exists()


def test_validate_reports_what_harbor_would_reject() -> None:
    _session(subagent=True)
    (row,) = _rows()
    fmt = FORMATS["atif"]

    wrong_call = orjson.loads(orjson.dumps(row))
    wrong_call["steps"][1]["observation"]["results"][0]["source_call_id"] = "toolu_elsewhere"
    user_metrics = orjson.loads(orjson.dumps(row))
    user_metrics["steps"][0]["metrics"] = {"prompt_tokens": 1}
    renumbered = orjson.loads(orjson.dumps(row))
    renumbered["steps"][1]["step_id"] = 7
    dangling = orjson.loads(orjson.dumps(row))
    dangling["subagent_trajectories"] = []

    assert any("toolu_elsewhere" in p for p in fmt.validate(wrong_call))
    assert any("only for agent steps" in p for p in fmt.validate(user_metrics))
    assert any("step_id" in p for p in fmt.validate(renumbered))
    assert any("no embedded" in p for p in fmt.validate(dangling))
    assert fmt.validate(row | {"id": "x"})  # extra fields are forbidden, as in Harbor


def test_final_metrics_are_the_totals_the_session_stated_and_survive_an_import(
    tmp_path: Path,
) -> None:
    """A result's totals cover more than the coordinator's steps (its sub-agents, every model):
    the trajectory states them, and importing it gives them back."""
    example = _session()
    Execution.objects.filter(pk=example.execution_id).update(
        input_tokens=1000, output_tokens=400, cache_creation_input_tokens=200,
        cache_read_input_tokens=3000,
    )  # fmt: skip

    (row,) = _rows()

    final = Trajectory.model_validate(row).final_metrics
    assert final is not None
    assert (final.total_prompt_tokens, final.total_completion_tokens) == (4200, 400)
    assert final.total_cached_tokens == 3000
    steps = sum(
        s.metrics.prompt_tokens or 0 for s in Trajectory.model_validate(row).steps if s.metrics
    )
    assert steps < final.total_prompt_tokens  # more than the steps' sums
    path = tmp_path / "trajectory.json"
    path.write_bytes(orjson.dumps(row))
    report = import_paths([path])
    assert report.ok, report.summary()
    copy = Execution.objects.filter(source="imported").get()
    # ATIF doesn't tell cache writes apart: they come back as input.
    assert (copy.input_tokens, copy.cache_read_input_tokens, copy.output_tokens) == (
        1200,
        3000,
        400,
    )
