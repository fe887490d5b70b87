"""ATIF trajectories: our own ATIF export read back gives the same execution."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from collection.importers import IMPORTERS, import_file, importer_for
from collection.importers.reading import read_head
from collection.models import Execution, TrainingExample
from exports.options import ExportOptions
from exports.pipeline import run_export
from exports.records import Record, load_records
from tests.test_importers import SAMPLES

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures" / "transcripts"
OPTIONS = ExportOptions(include_thinking=True)


def _export(execution: Execution, directory: Path) -> Path:
    examples = TrainingExample.objects.filter(execution=execution)
    run_export(examples, "atif", OPTIONS, directory)
    (path,) = directory.glob("trajectories/*/trajectory.json")
    return path


def _round_trip(name: str, tmp_path: Path) -> tuple[Execution, Execution, Path]:
    report = import_file(FIXTURES / name)
    (original_pk,) = report.execution_ids
    original = Execution.objects.get(pk=original_pk)
    path = _export(original, tmp_path)
    again = import_file(path)
    assert again.ok and again.imported == 1, again.summary()
    (copy_pk,) = again.execution_ids
    copy = Execution.objects.get(pk=copy_pk)
    return original, copy, path


def _records(execution: Execution) -> list[Record]:
    return list(load_records(TrainingExample.objects.filter(execution=execution), OPTIONS))


def _steps(record: Record) -> list[dict[str, Any]]:
    """What a step says and does; usage as ATIF can carry it (cache writes count as input)."""
    return [
        {
            "text": step.text,
            "thinking": step.thinking,
            "user_text": step.user_text,
            "calls": [(c.id, c.name, c.arguments, c.output, c.is_error) for c in step.tool_calls],
            "prompt_tokens": step.usage.get("input_tokens", 0)
            + step.usage.get("cache_creation_input_tokens", 0)
            + step.usage.get("cache_read_input_tokens", 0),
            "cached": step.usage.get("cache_read_input_tokens", 0),
            "output": step.usage.get("output_tokens", 0),
        }
        for step in record.steps
    ]


@pytest.mark.parametrize("name", ["spotter__tool_heavy.jsonl", "gleam__tool_session.jsonl"])
def test_our_atif_export_read_back_gives_the_same_execution(name: str, tmp_path: Path) -> None:
    original, copy, path = _round_trip(name, tmp_path)

    assert importer_for(read_head(path)) is IMPORTERS["atif"]
    (before,), (after,) = _records(original), _records(copy)
    assert _steps(after) == _steps(before)
    assert (after.prompt, after.system, after.final_text) == (
        before.prompt,
        before.system,
        before.final_text,
    )
    assert copy.model == original.model
    assert copy.cost_usd == pytest.approx(original.cost_usd)
    assert copy.num_turns == original.num_turns
    assert copy.status == original.status
    # The document's totals are what ATIF carries (its prompt tokens include the cached ones).
    final = json.loads(path.read_text())["final_metrics"]
    assert copy.input_tokens + copy.cache_read_input_tokens == final["total_prompt_tokens"]
    assert copy.cache_read_input_tokens == final["total_cached_tokens"]
    assert copy.output_tokens == final["total_completion_tokens"]


def test_the_token_totals_of_a_transcript_survive_the_round_trip(tmp_path: Path) -> None:
    original, copy, _ = _round_trip("spotter__tool_heavy.jsonl", tmp_path)

    assert copy.output_tokens == original.output_tokens
    assert copy.cache_read_input_tokens == original.cache_read_input_tokens
    # ATIF does not tell cache writes apart: they come back as input.
    assert copy.input_tokens == original.input_tokens + original.cache_creation_input_tokens
    assert copy.total_tokens == original.total_tokens


def test_tool_calls_come_back_paired_with_their_outputs(tmp_path: Path) -> None:
    original, copy, path = _round_trip("spotter__tool_heavy.jsonl", tmp_path)

    document = json.loads(path.read_text())
    calls = [c for s in document["steps"] for c in s.get("tool_calls") or []]
    results = {
        r["source_call_id"]: r["content"]
        for s in document["steps"]
        for r in (s.get("observation") or {}).get("results", [])
    }
    stored = {c.tool_use_id: c for c in copy.tool_calls.all()}
    assert len(stored) == len(calls)
    for call in calls:
        row = stored[call["tool_call_id"]]
        assert (row.name, row.input) == (call["function_name"], call["arguments"])
        assert row.result == results[call["tool_call_id"]]
    assert copy.session_id == document["session_id"]
    assert copy.metadata["importer"] == "atif"


def test_an_embedded_sub_agent_comes_back_under_its_spawning_call(tmp_path: Path) -> None:
    original, copy, path = _round_trip("spotter__subagent.jsonl", tmp_path)

    document = json.loads(path.read_text())
    (sub,) = document["subagent_trajectories"]
    spawner = next(
        r["source_call_id"]
        for s in document["steps"]
        for r in (s.get("observation") or {}).get("results", [])
        if r.get("subagent_trajectory_ref")
    )
    sub_calls = [c["tool_call_id"] for s in sub["steps"] for c in s.get("tool_calls") or []]
    assert sub_calls
    parents = set(
        copy.tool_calls.filter(tool_use_id__in=sub_calls).values_list(
            "parent_tool_use_id", flat=True
        )
    )
    assert parents == {spawner}
    before = {r.spawned_by: _steps(r) for r in _records(original)}
    after = {r.spawned_by: _steps(r) for r in _records(copy)}
    assert after[None] == before[None]
    assert after[spawner] == before[spawner]


def test_reimporting_the_same_trajectory_changes_nothing(tmp_path: Path) -> None:
    _, copy, path = _round_trip("gleam__tool_session.jsonl", tmp_path)
    messages = copy.messages.count()

    again = import_file(path)

    assert (again.imported, again.skipped) == (0, 1)
    assert Execution.objects.get(pk=copy.pk).messages.count() == messages


def test_a_document_that_is_not_valid_atif_is_reported_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "trajectory.json"
    path.write_text(json.dumps({"schema_version": "ATIF-v1.7", "agent": {"name": "x"}}))

    report = import_file(path)

    (error,) = report.errors
    assert error.reason.startswith("not a valid ATIF trajectory: agent.version")


@pytest.mark.parametrize(("name", "importer"), SAMPLES.items())
def test_the_new_importers_leave_every_earlier_fixture_to_its_importer(
    name: str, importer: str
) -> None:
    head = read_head(FIXTURES / name)
    assert importer_for(head) is IMPORTERS[importer]
    assert not IMPORTERS["codex"].recognises(head)
    assert not IMPORTERS["atif"].recognises(head)


def test_an_embedded_sub_agent_no_result_points_at_is_reported_not_lost_silently(
    tmp_path: Path,
) -> None:
    report = import_file(FIXTURES / "spotter__subagent.jsonl")
    path = _export(Execution.objects.get(pk=report.execution_ids[0]), tmp_path)
    document = json.loads(path.read_text())
    for step in document["steps"]:
        for result in (step.get("observation") or {}).get("results", []):
            result.pop("subagent_trajectory_ref", None)
    (sub,) = document["subagent_trajectories"]
    orphan = tmp_path / "orphan.json"
    orphan.write_text(json.dumps(document))

    again = import_file(orphan)

    copy = Execution.objects.get(pk=again.execution_ids[0])
    problem = f"sub-agent trajectory {sub['trajectory_id']!r} is referenced by no result; skipped"
    assert copy.metadata["import_problems"] == [f"{orphan}: {problem}"]
    assert copy.is_partial


def _split_out_sub_agent(tmp_path: Path, ref_path: str) -> tuple[Path, dict[str, Any], str]:
    """Our export of a session with a sub-agent, its sub-agent moved to a file of its own and
    referenced by `trajectory_path` (ATIF's file-ref form) instead of embedded."""
    report = import_file(FIXTURES / "spotter__subagent.jsonl")
    exported = _export(Execution.objects.get(pk=report.execution_ids[0]), tmp_path / "export")
    document = json.loads(exported.read_text())
    (sub,) = document.pop("subagent_trajectories")
    spawner = ""
    for step in document["steps"]:
        for result in (step.get("observation") or {}).get("results", []):
            if result.get("subagent_trajectory_ref"):
                result["subagent_trajectory_ref"] = [{"trajectory_path": ref_path}]
                spawner = result["source_call_id"]
    run = tmp_path / "run"
    (run / "subagents").mkdir(parents=True)
    main = run / "trajectory.json"
    main.write_text(json.dumps(document))
    Execution.objects.all().delete()
    return main, sub, spawner


def test_a_sub_agent_in_a_file_of_its_own_comes_back_under_its_spawning_call(
    tmp_path: Path,
) -> None:
    main, sub, spawner = _split_out_sub_agent(tmp_path, "subagents/explore.json")
    (main.parent / "subagents" / "explore.json").write_text(json.dumps(sub))

    report = import_file(main)

    assert report.ok and report.imported == 1, report.summary()
    copy = Execution.objects.get()
    sub_calls = [c["tool_call_id"] for s in sub["steps"] for c in s.get("tool_calls") or []]
    stored = copy.tool_calls.filter(tool_use_id__in=sub_calls)
    assert sub_calls and stored.count() == len(sub_calls)
    assert set(stored.values_list("parent_tool_use_id", flat=True)) == {spawner}
    sub_steps = [s for s in sub["steps"] if s["source"] == "agent"]
    from_sub = copy.messages.filter(parent_tool_use_id=spawner, type="assistant")
    assert from_sub.count() == len(sub_steps)
    assert not copy.is_partial and copy.metadata["import_problems"] == []


@pytest.mark.parametrize(
    ("ref_path", "reason"),
    [
        ("subagents/missing.json", "no such file"),
        ("../outside.json", "outside the trajectory's folder; not read"),
        ("s3://bucket/sub.json", "not a local file (only files beside the trajectory are read)"),
    ],
)
def test_a_sub_agent_file_that_cannot_be_read_is_reported_and_the_session_kept(
    tmp_path: Path, ref_path: str, reason: str
) -> None:
    main, sub, spawner = _split_out_sub_agent(tmp_path, ref_path)
    (tmp_path / "outside.json").write_text(json.dumps(sub))  # there, but not beside it

    report = import_file(main)

    copy = Execution.objects.get(pk=report.execution_ids[0])
    (problem,) = copy.metadata["import_problems"]
    assert problem.startswith(f"{main}: step ") and problem.endswith(
        f"sub-agent trajectory_path {ref_path!r}: {reason}"
    )
    assert copy.is_partial and not copy.messages.filter(parent_tool_use_id=spawner).exists()
    assert copy.messages.filter(type="assistant").exists()


def test_a_sub_agent_file_that_is_not_atif_is_reported_with_the_reason(tmp_path: Path) -> None:
    main, _, _ = _split_out_sub_agent(tmp_path, "subagents/broken.json")
    (main.parent / "subagents" / "broken.json").write_text(json.dumps({"steps": []}))

    report = import_file(main)

    copy = Execution.objects.get(pk=report.execution_ids[0])
    (problem,) = copy.metadata["import_problems"]
    broken = main.parent / "subagents" / "broken.json"
    assert problem.startswith(f"{broken}: not a valid ATIF sub-agent trajectory: ")
