"""Bad input: every problem is reported by file, line and reason; what is valid is kept, and
nothing already stored changes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from collection.importers import import_file, import_paths, reading
from collection.models import Execution, Message, TaskStatus, ToolCall, TrainingExample

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures" / "transcripts"
SHORT = FIXTURES / "spotter__short.jsonl"


def broken_scorer(execution: Any) -> float:
    """A misconfigured scorer: it fails every session at the very end of its import."""
    raise RuntimeError("scorer is broken")


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(lines))
    return path


def message_count(lines: list[bytes]) -> int:
    """Messages the lines make: every line, but one per response (message id)."""
    records = [json.loads(line) for line in lines]
    responses = {r["message"]["id"] for r in records if r["type"] == "assistant"}
    return sum(1 for r in records if r["type"] != "assistant") + len(responses)


def test_a_malformed_line_is_reported_and_the_rest_of_the_session_kept(tmp_path: Path) -> None:
    lines = lines_of(SHORT)
    lines[3] = b'{"type": "user", "message": {"role": "user", "content": \n'  # line 4
    path = write(tmp_path / "session.jsonl", lines)

    report = import_file(path)

    (problem,) = report.errors
    assert (problem.file, problem.line) == (str(path), 4)
    assert problem.reason.startswith("malformed JSON")
    assert str(problem).startswith(f"{path}:4: malformed JSON")
    (execution,) = Execution.objects.all()
    assert execution.messages.count() == message_count(lines[:3] + lines[4:])
    assert execution.is_partial and "1 unreadable line" in execution.error
    assert execution.metadata["import_problems"] == [str(problem)]


def test_a_truncated_file_keeps_what_came_before_the_cut(tmp_path: Path) -> None:
    lines = lines_of(SHORT)
    path = write(tmp_path / "session.jsonl", [*lines[:-1], lines[-1][:120]])

    report = import_file(path)

    (problem,) = report.errors
    assert (problem.line, problem.reason) == (
        len(lines),
        "truncated: the file ends inside this line",
    )
    (execution,) = Execution.objects.all()
    assert execution.messages.count() == message_count(lines[:-1])
    assert execution.is_partial


@pytest.mark.parametrize("cut_after", [b'"isSidechain":fa', b"Kept model as \\u00"])
def test_a_last_line_cut_inside_a_literal_or_an_escape_is_truncated_not_malformed(
    tmp_path: Path, cut_after: bytes
) -> None:
    lines = lines_of(SHORT)
    end = lines[-1].index(cut_after) + len(cut_after)
    path = write(tmp_path / "session.jsonl", [*lines[:-1], lines[-1][:end]])

    report = import_file(path)

    (problem,) = report.errors
    assert (problem.line, problem.reason) == (
        len(lines),
        "truncated: the file ends inside this line",
    )
    assert Execution.objects.get().messages.count() == message_count(lines[:-1])


def test_the_same_cut_followed_by_a_newline_is_malformed(tmp_path: Path) -> None:
    lines = lines_of(SHORT)
    end = lines[-1].index(b'"isSidechain":fa') + len(b'"isSidechain":fa')
    path = write(tmp_path / "session.jsonl", [*lines[:-1], lines[-1][:end] + b"\n"])

    (problem,) = import_file(path).errors
    assert problem.reason.startswith("malformed JSON: Expecting value")


def test_a_transcript_whose_first_line_is_longer_than_the_head_is_recognised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = FIXTURES / "spotter__agent-acompact-946d2b.jsonl"
    first = lines_of(source)[0]
    # The real first line is 9 KB: a 4 KiB head stands in for 64 KiB and a longer line.
    monkeypatch.setattr(reading, "HEAD_BYTES", 4096)
    assert len(first) > reading.HEAD_BYTES
    folder = tmp_path / "walk"
    folder.mkdir()
    shutil.copy(source, folder / source.name)

    report = import_paths([folder])

    assert report.ok and not report.ignored and report.imported == 1
    assert Execution.objects.get().session_id == json.loads(first)["sessionId"]


def test_a_line_in_another_encoding_is_reported_and_skipped(tmp_path: Path) -> None:
    lines = lines_of(SHORT)
    lines[12] = lines[12].replace(b"Request interrupted", "Requête interrompue".encode("latin-1"))
    path = write(tmp_path / "session.jsonl", lines)

    report = import_file(path)

    (problem,) = report.errors
    assert problem.line == 13 and problem.reason.startswith("not UTF-8 (byte 0xea")
    assert Execution.objects.get().messages.count() == message_count(lines[:12] + lines[13:])


def test_a_utf16_file_is_refused_whole(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    path.write_bytes(SHORT.read_text().encode("utf-16"))

    report = import_file(path)

    (problem,) = report.errors
    assert (problem.line, problem.reason) == (
        1,
        "UTF-16/UTF-32 or binary data: transcripts are UTF-8",
    )
    assert not Execution.objects.exists()


def test_a_line_over_the_size_limit_is_skipped_without_reading_it_whole(
    tmp_path: Path, settings: Any
) -> None:
    settings.TRAININGDASH_IMPORT_MAX_LINE_BYTES = 900
    lines = lines_of(SHORT)
    huge = [n for n, line in enumerate(lines, 1) if len(line) > 900]
    assert len(huge) == 3  # real lines over this (small) limit

    report = import_file(write(tmp_path / "session.jsonl", lines))

    assert [(p.line, p.reason) for p in report.errors] == [
        (n, "line longer than 900 bytes") for n in huge
    ]
    kept = [line for line in lines if len(line) <= 900]
    assert Execution.objects.get().messages.count() == message_count(kept)


@pytest.mark.parametrize(
    "content",
    [b"name,score\nalice,3\n", b"# Notes\n\nnot a transcript\n", b'{"hello": "world"}\n', b""],
)
def test_a_file_that_is_not_a_transcript_is_reported(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.jsonl"
    path.write_bytes(content)

    report = import_file(path)

    (problem,) = report.errors
    assert (problem.file, problem.line) == (str(path), 1)
    assert problem.reason.startswith(("not a transcript", "empty file"))
    assert not Execution.objects.exists()


def test_a_folder_walk_ignores_files_that_are_not_transcripts(tmp_path: Path) -> None:
    shutil.copy(SHORT, tmp_path)
    (tmp_path / "sessions-index.json").write_text('{"entries": []}')

    report = import_paths([tmp_path])

    assert report.ok and report.imported == 1
    assert [p.file for p in report.ignored] == [str((tmp_path / "sessions-index.json").resolve())]


def test_a_path_that_does_not_exist_is_reported(tmp_path: Path) -> None:
    report = import_paths([tmp_path / "missing.jsonl", tmp_path / "*.nothing"])

    assert [p.reason for p in report.errors] == ["no such file, folder or match"] * 2


def test_a_truncated_json_document_is_reported_with_its_line(tmp_path: Path) -> None:
    text = (FIXTURES / "sweagent__function_calling_simple.traj").read_text()
    path = tmp_path / "run.traj"
    path.write_text(text[: len(text) // 2])

    report = import_file(path)

    (problem,) = report.errors
    assert problem.line == text[: len(text) // 2].count("\n") + 1
    assert problem.reason == "truncated: the file ends inside the JSON document"
    assert not Execution.objects.exists()


def test_a_bad_session_is_reported_and_the_next_one_in_the_file_kept(tmp_path: Path) -> None:
    first = [
        json.loads(line)
        for line in (FIXTURES / "gleam__tool_session.jsonl").read_text().splitlines()
    ]
    del first[1]["message"]["content"][0]["id"]  # a tool call the recorder can't key
    path = tmp_path / "runs.jsonl"
    path.write_text(
        "".join(json.dumps(r) + "\n" for r in first)
        + (FIXTURES / "gleam__basic_query.ndjson").read_text()
    )

    report = import_file(path)

    assert [(p.line, p.reason) for p in report.errors] == [(2, "tool_use block without an id")]
    assert report.imported == 2
    assert Execution.objects.get(session_id=first[0]["session_id"]).is_partial


def test_a_session_that_fails_midway_is_rolled_back_whole(tmp_path: Path, settings: Any) -> None:
    settings.TRAININGDASH_QUALITY_SCORER = "tests.test_import_bad_input.broken_scorer"

    report = import_paths([SHORT, FIXTURES / "gleam__basic_query.ndjson"])

    assert report.failed == 2 and report.imported == 0
    assert [p.reason for p in report.errors] == ["RuntimeError: scorer is broken"] * 2
    assert not Execution.objects.exists() and not Message.objects.exists()


def test_a_corrupted_copy_of_a_stored_session_changes_nothing(tmp_path: Path) -> None:
    import_file(SHORT)
    stored = list(Execution.objects.values())
    messages = list(Message.objects.values())
    lines = lines_of(SHORT)
    lines[4] = b"garbage\n"
    lines[10] = lines[10][:50] + b"\n"

    report = import_file(write(tmp_path / "session.jsonl", lines))

    assert [p.line for p in report.errors] == [5, 11]
    assert report.skipped == 1
    assert list(Execution.objects.values()) == stored
    assert list(Message.objects.values()) == messages
    assert TrainingExample.objects.count() == 1 and ToolCall.objects.count() == 2


def test_a_file_of_garbage_lists_a_bounded_number_of_problems(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    path.write_bytes(SHORT.read_bytes() + b"{oops\n" * 500)

    report = import_file(path)

    assert len(report.errors) == 101  # 100 listed, then one line saying how many more
    assert report.errors[-1].reason == "400 more unreadable line(s) not listed"
    assert Execution.objects.get().status == TaskStatus.COMPLETED


def test_a_folder_walk_passes_over_empty_files(tmp_path: Path) -> None:
    (tmp_path / "started-and-left.jsonl").write_bytes(b"")
    shutil.copy(SHORT, tmp_path)

    report = import_paths([tmp_path])

    assert report.ok and report.imported == 1
    assert [p.reason for p in report.ignored] == ["empty file"]
