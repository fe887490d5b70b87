"""Stepwise-supervision export: TRL's type (prompt, one completion and one label per step),
labels from review marks and the verifier's outcome, left-out records counted, read back with
`datasets`."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import datasets
import pytest

from collection.models import TrainingExample
from collection.review import mark_step
from collection.sessions.trajectory import TrajectoryRecorder
from exports.formats import FORMATS
from exports.formats.stepwise import NO_LABELS, StepwiseFormat, StepwiseRow
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


def _session(success: bool | None, *, steps: int = 3) -> TrainingExample:
    """A prompt and `steps` responses, each running one Bash command, then an answer."""
    execution = make_execution(make_task(), success=success)
    rec = TrajectoryRecorder(execution)
    rec.record({"type": "user", "uuid": "prompt", "message": {"content": "Fix the tests"}})
    for n in range(1, steps + 1):
        thinking = {"type": "thinking", "thinking": f"Try case {n}."}
        text = {"type": "text", "text": f"Case {n}."}
        call = tool_use(f"toolu_{n}", "Bash", command=f"pytest -k {n}")
        rec.record(assistant_payload([thinking, text, call], response=f"m{n}"))
        rec.record(result_payload(f"toolu_{n}", f"case {n} output", is_error=n == 2))
    rec.record(assistant_payload([{"type": "text", "text": "Done."}], response="m_done"))
    return make_example(execution)


def _mark(example: TrainingExample, response: str, user: Any, comment: str = "") -> None:
    mark_step(example, example.execution.messages.get(uuid=f"uuid-{response}"), user, comment)


def _rows(
    options: ExportOptions | None = None, left_out: Counter[str] | None = None
) -> list[dict[str, Any]]:
    options = options or ExportOptions()
    fmt = FORMATS["stepwise"]
    assert isinstance(fmt, StepwiseFormat)
    records = load_records(TrainingExample.objects.all(), options)
    return list(fmt.rows(records, options, left_out=left_out))


def test_every_unmarked_step_of_a_verified_success_is_good() -> None:
    example = _session(True)

    (row,) = _rows()

    assert FORMATS["stepwise"].validate(row) == []
    parsed = StepwiseRow.model_validate(row)
    assert parsed.id == f"ex-{example.pk}"
    assert parsed.prompt == "Fix the tests"
    assert parsed.labels == [True, True, True, True]
    assert len(parsed.completions) == 4


def test_a_step_marked_bad_is_labelled_false_even_in_a_success(reviewer) -> None:
    example = _session(True)
    _mark(example, "m2", reviewer, "ran the wrong case")

    (row,) = _rows()

    assert row["labels"] == [True, False, True, True]


def test_a_failed_session_is_good_until_its_first_bad_mark_and_bad_after(reviewer) -> None:
    example = _session(False)
    _mark(example, "m2", reviewer)

    (row,) = _rows()

    assert row["labels"] == [True, False, False, False]


def test_a_failed_or_unverified_session_without_marks_is_left_out_and_counted() -> None:
    _session(False)
    _session(None)
    good = _session(True)
    left_out: Counter[str] = Counter()

    rows = _rows(left_out=left_out)

    assert [row["id"] for row in rows] == [f"ex-{good.pk}"]
    assert left_out == Counter({NO_LABELS: 2})


def test_a_completion_shows_the_call_and_its_whole_output_and_thinking_only_when_asked() -> None:
    _session(True)

    (row,) = _rows()
    (with_thinking,) = _rows(ExportOptions(include_thinking=True))

    assert row["completions"][0] == (
        'Case 1.\n<tool_call>{"arguments":{"command":"pytest -k 1"},"name":"Bash"}</tool_call>\n'
        "<tool_response>case 1 output</tool_response>"
    )
    assert "<tool_error>case 2 output</tool_error>" in row["completions"][1]
    assert row["completions"][3] == "Done."
    assert with_thinking["completions"][0].startswith("<thinking>Try case 1.</thinking>\nCase 1.")


def test_rows_load_back_with_datasets_as_trl_stepwise_columns(tmp_path: Path) -> None:
    _session(True)
    _session(True, steps=1)
    fmt = FORMATS["stepwise"]

    (path,) = fmt.write(_rows(), tmp_path)
    loaded = datasets.load_dataset("json", data_files=str(path), split="train")

    assert loaded.features["prompt"] == datasets.Value("string")
    assert loaded.features["completions"].feature == datasets.Value("string")
    assert loaded.features["labels"].feature == datasets.Value("bool")
    assert [len(labels) for labels in loaded["labels"]] == [4, 2]


def test_the_same_examples_give_the_same_bytes(tmp_path: Path, reviewer) -> None:
    _mark(_session(False), "m3", reviewer)
    _session(True)
    fmt = FORMATS["stepwise"]

    (first,) = fmt.write(_rows(), tmp_path / "a")
    (second,) = fmt.write(_rows(), tmp_path / "b")

    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes().count(b"\n") == 2


def test_validate_holds_rows_to_trls_type() -> None:
    _session(True)
    (row,) = _rows()
    fmt = FORMATS["stepwise"]

    assert fmt.validate(row | {"labels": row["labels"][:-1]})
    assert fmt.validate(row | {"labels": [1, 1, 1, 1]})  # bools, not numbers
    assert fmt.validate(row | {"prompt": ""})
    assert fmt.validate(row | {"completions": ["", *row["completions"][1:]]})
