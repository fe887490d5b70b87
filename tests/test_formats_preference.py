"""Preference export: TRL's conversational preference type, the pairing rule (verified success
over failure of the same task, golden first, no reuse unless asked, unpaired attempts counted),
memory bounded to one task's pairs, read back with `datasets`, deterministic."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import datasets
import pytest

from collection.models import Task, TrainingExample
from collection.sessions.trajectory import TrajectoryRecorder
from exports.formats import FORMATS
from exports.formats import preference as preference_module
from exports.formats.preference import (
    GONE,
    NO_COUNTERPART,
    NO_FAILURE,
    NO_SUCCESS,
    UNVERIFIED,
    PreferenceFormat,
    PreferenceRow,
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

pytestmark = pytest.mark.django_db


def _attempt(
    task: Task,
    success: bool | None,
    *,
    quality: float = 0.5,
    golden: bool = False,
    prompt: str = "Fix the tests",
) -> TrainingExample:
    """One attempt at `task`: a Bash call and an answer that says how it went."""
    execution = make_execution(task, success=success)
    rec = TrajectoryRecorder(execution)
    rec.record({"type": "user", "uuid": "prompt", "message": {"content": prompt}})
    text = {"type": "text", "text": "Running the tests."}
    rec.record(
        assistant_payload([text, tool_use("toolu_1", "Bash", command="pytest")], response="m1")
    )
    rec.record(result_payload("toolu_1", "ok" if success else "1 failed"))
    answer = "All green." if success else "I could not fix it."
    rec.record(assistant_payload([{"type": "text", "text": answer}], response="m2"))
    return make_example(execution, quality_score=quality, is_golden=golden)


def _rows(
    options: ExportOptions | None = None, left_out: Counter[str] | None = None
) -> list[dict[str, Any]]:
    options = options or ExportOptions()
    fmt = FORMATS["preference"]
    assert isinstance(fmt, PreferenceFormat)
    records = load_records(TrainingExample.objects.all(), options)
    return list(fmt.rows(records, options, left_out=left_out))


def _pairs(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(row["chosen_id"], row["rejected_id"]) for row in rows]


def _id(example: TrainingExample) -> str:
    return f"ex-{example.pk}"


def test_the_registry_lists_the_preference_format() -> None:
    assert isinstance(FORMATS["preference"], PreferenceFormat)


def test_a_verified_success_is_chosen_over_a_failure_of_the_same_task() -> None:
    task = make_task()
    failure = _attempt(task, False, quality=0.2)
    success = _attempt(task, True, quality=0.9)

    (row,) = _rows()

    assert FORMATS["preference"].validate(row) == []
    parsed = PreferenceRow.model_validate(row)
    assert _pairs([row]) == [(_id(success), _id(failure))]
    assert [m.model_dump(exclude_none=True) for m in parsed.prompt] == [
        {"role": "user", "content": "Fix the tests"}
    ]
    # TRL's conversational preference type: message lists, the attempts start with the assistant
    assert row["chosen"][0] == {
        "role": "assistant",
        "content": "Running the tests.",
        "tool_calls": [
            {
                "id": "toolu_1",
                "type": "function",
                "function": {"name": "Bash", "arguments": {"command": "pytest"}},
            }
        ],
    }
    assert row["chosen"][1] == {
        "role": "tool",
        "name": "Bash",
        "tool_call_id": "toolu_1",
        "content": "ok",
    }
    assert row["chosen"][-1] == {"role": "assistant", "content": "All green."}
    assert row["rejected"][-1] == {"role": "assistant", "content": "I could not fix it."}
    assert [tool["function"]["name"] for tool in row["tools"]] == ["Bash"]


def test_a_golden_success_is_chosen_before_a_higher_scoring_one() -> None:
    task = make_task()
    _attempt(task, True, quality=0.95)
    golden = _attempt(task, True, quality=0.6, golden=True)
    failure = _attempt(task, False, quality=0.3)

    rows = _rows()

    assert _pairs(rows) == [(_id(golden), _id(failure))]


def test_no_example_is_used_twice_and_the_leftover_is_counted() -> None:
    task = make_task()
    best = _attempt(task, True, quality=0.9)
    _attempt(task, True, quality=0.7)
    worst = _attempt(task, False, quality=0.1)
    left_out: Counter[str] = Counter()

    rows = _rows(left_out=left_out)

    assert _pairs(rows) == [(_id(best), _id(worst))]
    assert left_out == Counter({NO_COUNTERPART: 1})


def test_with_reuse_every_attempt_is_in_a_pair() -> None:
    task = make_task()
    best = _attempt(task, True, quality=0.9)
    second = _attempt(task, True, quality=0.7)
    failure = _attempt(task, False, quality=0.1)
    left_out: Counter[str] = Counter()

    rows = _rows(ExportOptions(reuse_examples=True), left_out=left_out)

    assert _pairs(rows) == [(_id(best), _id(failure)), (_id(second), _id(failure))]
    assert not left_out


def test_failures_pair_lowest_quality_first() -> None:
    task = make_task()
    success = _attempt(task, True, quality=0.9)
    _attempt(task, False, quality=0.4)
    lowest = _attempt(task, False, quality=0.1)

    rows = _rows()

    assert _pairs(rows) == [(_id(success), _id(lowest))]


def test_tasks_without_a_failure_or_a_success_make_no_pair_and_are_counted() -> None:
    only_successes, only_failures = make_task(name="Easy"), make_task(name="Hopeless")
    _attempt(only_successes, True)
    _attempt(only_successes, True)
    _attempt(only_failures, False)
    _attempt(make_task(name="Imported"), None)
    left_out: Counter[str] = Counter()

    rows = _rows(left_out=left_out)

    assert rows == []
    assert left_out == Counter({NO_FAILURE: 2, NO_SUCCESS: 1, UNVERIFIED: 1})


def test_attempts_at_different_tasks_or_prompts_never_pair() -> None:
    first, second = make_task(name="First"), make_task(name="Second")
    _attempt(first, True)
    _attempt(second, False)
    _attempt(first, False, prompt="A different request")

    assert _rows() == []


def test_pairs_are_built_one_task_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # The second pass loads the records of one task's pairs, never every example at once.
    for name in ("A", "B", "C"):
        task = make_task(name=name)
        _attempt(task, True)
        _attempt(task, False)
        _attempt(task, True)  # unpaired: not loaded again
    loads: list[int] = []
    real = preference_module.load_records

    def counting(examples: Any, options: ExportOptions) -> Any:
        loads.append(examples.count())
        return real(examples, options)

    monkeypatch.setattr(preference_module, "load_records", counting)

    rows = _rows()

    assert len(rows) == 3
    assert loads == [2, 2, 2]


def test_a_pair_whose_example_goes_away_before_the_second_pass_is_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    task = make_task()
    _attempt(task, True)
    failure = _attempt(task, False)
    real = preference_module.load_records

    def after_a_deletion(examples: Any, options: ExportOptions) -> Any:
        failure.delete()  # a reviewer deletes it while the export runs
        return real(examples, options)

    monkeypatch.setattr(preference_module, "load_records", after_a_deletion)
    left_out: Counter[str] = Counter()

    assert _rows(left_out=left_out) == []
    assert left_out == Counter({GONE: 1})


def test_rows_load_back_with_datasets_as_conversational_preference(tmp_path: Path) -> None:
    for name in ("A", "B"):
        task = make_task(name=name)
        _attempt(task, True)
        _attempt(task, False)
    fmt = FORMATS["preference"]

    (path,) = fmt.write(_rows(), tmp_path)
    loaded = datasets.load_dataset("json", data_files=str(path), split="train")

    assert {"prompt", "chosen", "rejected"} <= set(loaded.column_names)
    first = loaded[0]
    assert first["prompt"][-1]["role"] == "user"
    assert first["chosen"][0]["role"] == first["rejected"][0]["role"] == "assistant"
    call = first["chosen"][0]["tool_calls"][0]["function"]
    assert (call["name"], call["arguments"]) == ("Bash", {"command": "pytest"})


def test_the_same_examples_give_the_same_bytes(tmp_path: Path) -> None:
    for name in ("A", "B"):
        task = make_task(name=name)
        _attempt(task, False)
        _attempt(task, True, golden=True)
    fmt = FORMATS["preference"]

    (first,) = fmt.write(_rows(), tmp_path / "a")
    (second,) = fmt.write(_rows(), tmp_path / "b")

    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes().count(b"\n") == 2


def test_validate_holds_rows_to_trls_type() -> None:
    task = make_task()
    _attempt(task, True)
    _attempt(task, False)
    (row,) = _rows()
    fmt = FORMATS["preference"]

    unanswered = row | {"chosen": row["chosen"][:1]}
    ends_with_assistant = row | {"prompt": [*row["prompt"], row["chosen"][-1]]}
    starts_with_tool = row | {"rejected": row["rejected"][1:]}

    assert any("never answered" in p for p in fmt.validate(unanswered))
    assert any("ending with the user's" in p for p in fmt.validate(ends_with_assistant))
    assert any("starts with the assistant" in p for p in fmt.validate(starts_with_tool))
    assert fmt.validate(row | {"chosen": []})


def test_an_export_reports_the_unpaired_examples_in_its_counts(tmp_path: Path) -> None:
    from exports.pipeline import run_export

    task = make_task(name="Fix the tests")
    _attempt(task, True, quality=0.9)
    _attempt(task, False, quality=0.2)
    _attempt(make_task(name="Easy"), True)

    result = run_export(TrainingExample.objects.all(), "preference", ExportOptions(), tmp_path)

    assert result.written == 1
    assert result.left_out == {NO_FAILURE: 1}
