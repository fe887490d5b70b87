"""`manage.py import_sessions PATH...`: folders, globs, the report and the exit status."""

from __future__ import annotations

import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from collection.models import Execution

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures" / "transcripts"
NAMES = [
    "spotter__short.jsonl",
    "gleam__basic_query.ndjson",
    "sweagent__function_calling_simple.traj",
]


def run(*args: str) -> str:
    out = StringIO()
    call_command("import_sessions", *args, "--no-progress", stdout=out)
    return out.getvalue()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "nested").mkdir()
    for name in NAMES:
        shutil.copy(FIXTURES / name, tmp_path / "nested" / name)
    return tmp_path


def test_a_folder_is_walked_and_every_session_imported(folder: Path) -> None:
    output = run(str(folder))

    assert "3 file(s)" in output and "imported 3 session(s)" in output
    assert sorted(Execution.objects.values_list("metadata__importer", flat=True)) == [
        "claude_code",
        "stream_json",
        "swe_agent",
    ]


def test_a_glob_imports_only_what_it_matches(folder: Path) -> None:
    output = run(str(folder / "**" / "*.jsonl"))

    assert "imported 1 session(s)" in output
    assert Execution.objects.get().metadata["importer"] == "claude_code"


def test_importing_again_reports_the_sessions_as_skipped(folder: Path) -> None:
    run(str(folder))

    output = run(str(folder))

    assert "imported 0 session(s), updated 0, skipped 3 (already imported)" in output
    assert Execution.objects.count() == 3


def test_errors_are_listed_by_file_and_line_and_fail_the_command(folder: Path) -> None:
    bad = folder / "bad.jsonl"
    bad.write_bytes((FIXTURES / "spotter__short.jsonl").read_bytes() + b"{not json\n")

    with pytest.raises(CommandError, match="1 error"):
        run(str(folder))

    # bad.jsonl holds the same session as the good copy: the bad line cost only itself.
    assert Execution.objects.count() == 3


def test_exit_zero_reports_errors_without_failing(folder: Path) -> None:
    bad = folder / "bad.jsonl"
    bad.write_bytes((FIXTURES / "spotter__short.jsonl").read_bytes() + b"{not json\n")

    output = run(str(folder), "--exit-zero")

    assert f"  {bad.resolve()}:16: malformed JSON" in output


def test_a_dry_run_stores_nothing(folder: Path) -> None:
    output = run(str(folder), "--dry-run")

    assert "would import 3 session(s)" in output
    assert not Execution.objects.exists()


def test_a_folder_with_nothing_importable_says_what_it_found_and_fails(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text('{"name": "not-a-session", "version": "1.0.0"}')
    (tmp_path / "notes.txt").write_text("not walked")

    with pytest.raises(CommandError) as failed:
        run(str(tmp_path))

    assert str(failed.value) == (
        f"nothing imported from {tmp_path}: 1 file(s) found, none a transcript"
    )
    assert not Execution.objects.exists()


def test_an_empty_folder_fails_and_names_the_files_it_looks_for(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"no files ending in \.json, \.jsonl"):
        run(str(tmp_path))
