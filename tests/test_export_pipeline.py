"""exports.pipeline.run_export: records -> rows -> redaction -> validation -> files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from collection.models import TaskStatus, TrainingExample
from collection.sessions.trajectory import TrajectoryRecorder
from exports.formats import FORMATS, ExportError
from exports.options import ExportOptions
from exports.pipeline import run_export
from tests.factories import (
    assistant_payload,
    make_example,
    make_execution,
    make_trajectory,
    tool_use,
)

pytestmark = pytest.mark.django_db
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"


def lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def sessions(count: int) -> list[TrainingExample]:
    return [
        make_example(make_trajectory(make_execution(session_id=f"s{n}"), turns=2))
        for n in range(count)
    ]


def unanswered_session() -> TrainingExample:
    """A session killed while its tool ran: the call never got its result."""
    run = make_execution(status=TaskStatus.IN_PROGRESS, session_id="killed")
    recorder = TrajectoryRecorder(run)
    recorder.record({"type": "user", "uuid": "p", "message": {"content": "Run it"}})
    first = tool_use("toolu_x", "Bash", command="make")
    recorder.record(assistant_payload([first], response="m1"))
    recorder.record(assistant_payload([{"type": "text", "text": "Done?"}], response="m2"))
    return make_example(run)


def test_the_nine_formats_are_registered() -> None:
    assert set(FORMATS) == {
        "jsonl",
        "conversations",
        "instruct",
        "messages",
        "preference",
        "stepwise",
        "adp",
        "atif",
        "evaluation",
    }


def test_an_export_writes_every_valid_row_and_reports_progress(tmp_path: Path) -> None:
    sessions(3)
    seen: list[tuple[int, int]] = []
    result = run_export(
        TrainingExample.objects.all(),
        "jsonl",
        ExportOptions(),
        tmp_path,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert result.files == [tmp_path / "data.jsonl"]
    assert (result.records, result.written, result.left_out) == (3, 3, {})
    assert len(lines(tmp_path / "data.jsonl")) == 3
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_duplicates_are_counted_as_left_out(tmp_path: Path) -> None:
    original, copy = sessions(2)
    copy.duplicate_of = original
    copy.save()
    result = run_export(TrainingExample.objects.all(), "jsonl", ExportOptions(), tmp_path)
    assert (result.written, result.left_out) == (1, {"duplicate": 1})


def test_a_row_that_cannot_be_valid_is_left_out_counted_and_explained(tmp_path: Path) -> None:
    sessions(1)
    unanswered_session()
    result = run_export(TrainingExample.objects.all(), "jsonl", ExportOptions(), tmp_path)
    assert (result.written, result.left_out) == (1, {"invalid": 1})
    assert any("toolu_x" in finding for finding in result.findings)
    (row,) = lines(tmp_path / "data.jsonl")
    assert all(m.get("tool_calls", [{}])[0].get("id") != "toolu_x" for m in row["messages"])


def test_rows_over_the_token_limit_are_left_out(tmp_path: Path) -> None:
    sessions(2)
    result = run_export(
        TrainingExample.objects.all(), "jsonl", ExportOptions(max_tokens=20), tmp_path
    )
    assert (result.written, result.left_out) == (0, {"invalid": 2})
    assert all("over the limit of 20" in f for f in result.findings)


def test_secrets_are_redacted_by_default_and_kept_when_asked(tmp_path: Path) -> None:
    run = make_trajectory(turns=1)
    call = run.tool_calls.get()
    call.result = f"export AWS_ACCESS_KEY_ID={AWS_KEY}"
    call.save()
    make_example(run)
    redacted = run_export(TrainingExample.objects.all(), "jsonl", ExportOptions(), tmp_path / "a")
    text = (tmp_path / "a" / "data.jsonl").read_text()
    assert AWS_KEY not in text and "[REDACTED:aws_key]" in text
    assert redacted.redactions["aws_key"] == 1
    options = ExportOptions(redact=False)
    kept = run_export(TrainingExample.objects.all(), "jsonl", options, tmp_path / "b")
    assert AWS_KEY in (tmp_path / "b" / "data.jsonl").read_text()
    assert kept.redactions == {}


@pytest.mark.parametrize("name", ["jsonl", "conversations", "instruct", "messages", "evaluation"])
def test_the_same_examples_give_byte_identical_files(tmp_path: Path, name: str) -> None:
    sessions(3)
    options = ExportOptions(include_thinking=True)
    first = run_export(TrainingExample.objects.all(), name, options, tmp_path / "one")
    second = run_export(TrainingExample.objects.all(), name, options, tmp_path / "two")
    assert [p.name for p in first.files] == [p.name for p in second.files]
    for a, b in zip(first.files, second.files, strict=True):
        assert a.read_bytes() == b.read_bytes()
    assert first.written == 3


def test_an_unknown_format_is_an_export_error_that_retrying_wont_fix(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="unknown export format 'csv'") as raised:
        run_export(TrainingExample.objects.all(), "csv", ExportOptions(), tmp_path)
    assert raised.value.retryable is False


# Rows are written with their keys in the order the format builds them (sorting every object's
# keys doubled the cost of serialising): that order must not depend on the process, as it would
# if a row were built from a set of strings (their hashes change from one process to the next).
_ROWS_IN_A_FRESH_PROCESS = """
import hashlib, pickle, sys
import django
django.setup()
from exports.formats import FORMATS
from exports.formats.base import dumps
from exports.options import ExportOptions
records = pickle.load(open(sys.argv[1], "rb"))
options = ExportOptions(include_thinking=True)
for name in sorted(FORMATS):
    if name == "preference":  # pairs read their records back from the database
        continue
    rows = b"".join(dumps(row) for row in FORMATS[name].rows(iter(records), options))
    print(name, hashlib.sha256(rows).hexdigest())
"""


def test_rows_are_the_same_bytes_whatever_the_process_hash_seed(tmp_path: Path) -> None:
    import os
    import pickle
    import subprocess
    import sys

    from exports.records import load_records

    sessions(3)
    options = ExportOptions(include_thinking=True)
    records = list(load_records(TrainingExample.objects.all(), options))
    (tmp_path / "records.pickle").write_bytes(pickle.dumps(records))
    root = Path(__file__).resolve().parent.parent
    outputs = []
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "DJANGO_SETTINGS_MODULE": "tests.settings"}
        done = subprocess.run(
            [sys.executable, "-c", _ROWS_IN_A_FRESH_PROCESS, str(tmp_path / "records.pickle")],
            capture_output=True, text=True, cwd=root, env=env, check=True,
        )  # fmt: skip
        outputs.append(done.stdout)
    assert outputs[0].count("\n") == len(FORMATS) - 1
    assert outputs[0] == outputs[1] == outputs[2]
