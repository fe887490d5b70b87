"""Imported sessions are categorised from what they did: real transcripts, with the signals
(tools, files, languages, delegation) read here from the raw JSON, independently."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from collection.importers import import_file
from collection.importers.categorise import ToolUse, categorise
from collection.models import Execution, Task

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).parent / "fixtures" / "transcripts"


def tool_uses(name: str) -> list[dict[str, Any]]:
    """Every tool call, the session's own and its sub-agent's (embedded in progress lines),
    once per tool-use id."""
    lines = [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line]
    progress = [line["data"] for line in lines if line.get("type") == "progress"]
    embedded = [data["message"] for data in progress if isinstance(data.get("message"), dict)]
    found: dict[str, dict[str, Any]] = {}
    for record in lines + embedded:
        content = (record.get("message") or {}).get("content")
        if record.get("type") != "assistant" or not isinstance(content, list):
            continue
        found |= {b["id"]: b for b in content if b.get("type") == "tool_use"}
    return list(found.values())


def session_id_of(path: Path) -> str:
    lines = (json.loads(line) for line in path.read_text().splitlines() if line)
    return next(line["sessionId"] for line in lines if line.get("sessionId"))


def imported(name: str) -> Execution:
    report = import_file(FIXTURES / name)
    (session,) = report.sessions
    assert report.errors == [] and session.execution_id is not None
    return Execution.objects.get(pk=session.execution_id)


def test_a_session_that_delegates_to_a_subagent_is_multi_agent() -> None:
    uses = tool_uses("spotter__subagent.jsonl")
    execution = imported("spotter__subagent.jsonl")

    found = execution.metadata["categorised"]
    assert {u["name"] for u in uses} & {"Task", "Agent"}
    assert execution.task.category == found["category"] == "multi_agent"
    assert found["multi_agent"] is True
    assert found["tools"] == sorted({u["name"] for u in uses})
    files = {u["input"]["file_path"] for u in uses if "file_path" in u["input"]}
    assert found["files_touched"] == len(files)
    suffixes = {Path(f).suffix for f in files}
    assert {".exs", ".md"} <= suffixes
    assert {"Elixir", "Markdown"} <= set(found["languages"])
    written = sorted(u["input"]["file_path"] for u in uses if u["name"] == "Write")
    assert found["files_edited"] == written


def test_a_prompt_about_something_that_does_not_start_is_debugging_and_easy() -> None:
    uses = tool_uses("spotter__short.jsonl")
    execution = imported("spotter__short.jsonl")

    assert execution.task.name == "mix phx.server doesnt seem to start"
    assert (execution.task.category, execution.task.difficulty) == ("debugging", "easy")
    # Glob's path is the folder searched, not a file the session touched.
    assert [u["name"] for u in uses] == ["Bash", "Glob"]
    assert execution.metadata["categorised"]["files_touched"] == 0


def test_languages_come_from_the_extensions_of_the_files_read() -> None:
    uses = tool_uses("spotter__tool_heavy.jsonl")
    execution = imported("spotter__tool_heavy.jsonl")

    read = [u["input"]["file_path"] for u in uses if u["name"] == "Read"]
    assert [Path(p).suffix for p in read] == [".js"]
    found = execution.metadata["categorised"]
    assert found["languages"] == ["JavaScript"] and found["files_edited"] == []
    assert found["tools"] == sorted({u["name"] for u in uses})


def test_a_swe_agent_bug_report_is_debugging() -> None:
    execution = imported("sweagent__function_calling_simple.traj")

    assert execution.task.name == "SyntaxError: invalid syntax"
    assert execution.task.category == "debugging"


def test_a_reviewers_category_survives_a_later_import_of_the_same_prompt(
    tmp_path: Path, admin_user: Any
) -> None:
    execution = imported("spotter__short.jsonl")
    client = Client()
    client.force_login(admin_user)
    task = execution.task
    form = {
        "name": task.name,
        "description": task.description,
        "category": "refactoring",
        "difficulty": "hard",
        "required_tools": "",
        "expected_outcomes": "",
        "constraints": "",
    }
    response = client.post(reverse("collection-task-edit", args=[task.pk]), form)
    assert response.status_code == 302
    # The same session saved under another name: another session that starts the same way.
    other = tmp_path / "other-session.jsonl"
    shutil.copy(FIXTURES / "spotter__short.jsonl", other)
    other.write_text(other.read_text().replace(session_id_of(other), "another-session"))

    report = import_file(other)

    assert report.errors == [] and Execution.objects.count() == 2
    assert set(Execution.objects.values_list("task", flat=True)) == {task.pk}
    task.refresh_from_db()
    assert (task.category, task.difficulty) == ("refactoring", "hard")


def test_a_category_changed_after_the_rule_filed_it_is_not_overwritten() -> None:
    execution = imported("spotter__short.jsonl")
    task = execution.task
    assert task.metadata["categorised"] == ["debugging", "easy"]

    execution.delete()
    Task.objects.filter(pk=task.pk).update(category="testing")  # as if a person chose it
    imported("spotter__short.jsonl")

    task.refresh_from_db()
    assert task.category == "testing"


def test_difficulty_is_the_middle_of_turns_tool_calls_and_files() -> None:
    edits = [ToolUse("Edit", {"file_path": f"src/m{i % 8}.py"}) for i in range(30)]

    assert categorise("", edits, turns=1).difficulty == "hard"  # 8 files, 30 calls, 1 turn
    assert categorise("", edits[:8], turns=1).difficulty == "medium"  # 8 files, 8 calls
    assert categorise("", edits[:1], turns=100).difficulty == "easy"  # only turns are high


def test_test_runs_and_edited_test_files_point_to_testing() -> None:
    calls = [
        ToolUse("Write", {"file_path": "tests/test_api.py"}),
        ToolUse("Bash", {"command": "python -m pytest -q tests"}),
    ]

    found = categorise("", calls, turns=3)

    assert found.category == "testing" and found.signals["test_runs"] == 1


def test_a_session_with_no_evidence_stays_imported() -> None:
    assert categorise("", [], turns=0).category == "imported"
