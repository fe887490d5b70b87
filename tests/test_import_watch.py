"""Watching folders (`import_sessions --watch`, the worker's watch, the Import page): lines
appended while watching, a restart in the middle, rotated files; counts derived here from the
raw JSON lines, independently of the importers."""

from __future__ import annotations

import json
import os
import shutil
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.urls import reverse
from dramatiq.brokers.stub import StubBroker

from collection.importers import watch
from collection.importers.watch import ScanResult, scan, scan_configured
from collection.models import Execution, ImportWatchFile, Message, TaskStatus

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures" / "transcripts"
TOOL_HEAVY = FIXTURES / "spotter__tool_heavy.jsonl"
SHORT = FIXTURES / "spotter__short.jsonl"
# spotter__tool_heavy.jsonl's first 13 lines end on a response whose Bash call has no result yet.
RUNNING = 13


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def message_count(raw: list[bytes]) -> int:
    """Every line is a message, except that the lines of one response make one."""
    records: list[dict[str, Any]] = [json.loads(line) for line in raw if line.strip()]
    responses = {r["message"]["id"] for r in records if r["type"] == "assistant"}
    return sum(1 for r in records if r["type"] != "assistant") + len(responses)


def session_id(path: Path) -> str:
    return str(json.loads(lines_of(path)[-1])["sessionId"])


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "project").mkdir()
    return tmp_path


def test_lines_appended_while_watching_are_imported_by_the_next_scan(folder: Path) -> None:
    raw = lines_of(TOOL_HEAVY)
    path = folder / "project" / TOOL_HEAVY.name
    path.write_bytes(b"".join(raw[:RUNNING]))

    first = scan([str(folder)])
    execution = Execution.objects.get(session_id=session_id(TOOL_HEAVY))
    assert (first.imported, execution.messages.count()) == (1, message_count(raw[:RUNNING]))
    assert execution.status == TaskStatus.IN_PROGRESS  # its last tool call has no result yet

    with path.open("ab") as growing:  # the next line caught half written, then the rest
        growing.write(raw[RUNNING][:40])
    scan([str(folder)])
    with path.open("ab") as growing:
        growing.write(raw[RUNNING][40:] + b"".join(raw[RUNNING + 1 :]))
    last = scan([str(folder)])

    execution.refresh_from_db()
    assert last.updated == 1 and last.changed == [str(path.resolve())]
    assert Execution.objects.count() == 1
    assert execution.messages.count() == message_count(raw)
    assert execution.status == TaskStatus.COMPLETED
    assert ImportWatchFile.objects.get(path=str(path.resolve())).offset == len(b"".join(raw))


def test_a_restarted_watch_resumes_from_the_stored_offset_without_duplicates(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = lines_of(TOOL_HEAVY)
    path = folder / "project" / TOOL_HEAVY.name
    path.write_bytes(b"".join(raw[:RUNNING]))
    call_command("import_sessions", "--watch", str(folder), "--scans", "1", stdout=StringIO())
    stored = ImportWatchFile.objects.get(path=str(path.resolve()))
    assert stored.offset == path.stat().st_size

    # A new process: what it knows is in the database. The unchanged file is not even read.
    read: list[Path] = []
    real_import = watch.import_growing

    def spy(target: Path, *args: Any, **options: Any) -> Any:
        read.append(target)
        return real_import(target, *args, **options)

    monkeypatch.setattr(watch, "import_growing", spy)
    assert scan([str(folder)]).changed == [] and read == []

    with path.open("ab") as growing:
        growing.write(b"".join(raw[RUNNING:]))
    call_command("import_sessions", "--watch", str(folder), "--scans", "1", stdout=StringIO())

    execution = Execution.objects.get()
    uuids = [json.loads(line)["uuid"] for line in raw if b'"uuid"' in line]
    assert execution.messages.count() == message_count(raw)
    assert len(uuids) == len(set(uuids))  # the count above would hide duplicates otherwise
    assert Message.objects.count() == message_count(raw)


def test_a_file_replaced_by_another_is_read_from_the_start(folder: Path) -> None:
    path = folder / "project" / "session.jsonl"
    shutil.copy(SHORT, path)
    scan([str(folder)])
    replacement = folder / "project" / ".incoming"
    shutil.copy(TOOL_HEAVY, replacement)
    os.replace(replacement, path)  # a new inode under the same name, as a log rotation leaves

    result = scan([str(folder)])

    assert result.rotated == [str(path.resolve())] and result.imported == 1
    replaced = Execution.objects.get(session_id=session_id(TOOL_HEAVY))
    assert replaced.messages.count() == message_count(lines_of(TOOL_HEAVY))
    stored = ImportWatchFile.objects.get(path=str(path.resolve()))
    assert (stored.inode, stored.offset) == (path.stat().st_ino, TOOL_HEAVY.stat().st_size)


def test_a_file_that_shrank_in_place_is_read_from_the_start(folder: Path) -> None:
    path = folder / "project" / "session.jsonl"
    shutil.copy(TOOL_HEAVY, path)
    scan([str(folder)])
    inode = path.stat().st_ino
    path.write_bytes(SHORT.read_bytes())  # truncated and rewritten: same inode, smaller
    assert path.stat().st_ino == inode and SHORT.stat().st_size < TOOL_HEAVY.stat().st_size

    result = scan([str(folder)])

    assert result.rotated == [str(path.resolve())] and result.imported == 1
    short = Execution.objects.get(session_id=session_id(SHORT))
    assert short.messages.count() == message_count(lines_of(SHORT))
    assert ImportWatchFile.objects.get(path=str(path.resolve())).offset == SHORT.stat().st_size


def test_a_sub_agent_file_that_grows_reimports_its_session(folder: Path) -> None:
    main = folder / "project" / "ae4a77f8.jsonl"
    shutil.copy(FIXTURES / "spotter__subagent.jsonl", main)
    agents = folder / "project" / "ae4a77f8" / "subagents"
    agents.mkdir(parents=True)
    agent_raw = lines_of(FIXTURES / "spotter__subagent__agent-afb92ff.jsonl")
    (agents / "agent-afb92ff.jsonl").write_bytes(b"".join(agent_raw[:-1]))
    assert scan([str(folder)]).files == 2

    with (agents / "agent-afb92ff.jsonl").open("ab") as growing:
        growing.write(agent_raw[-1])
    result = scan([str(folder)])

    assert result.changed == [str(main.resolve())]  # the session is read, with its sub-agent
    assert Execution.objects.filter(session_id=session_id(main)).count() == 1


def test_the_watch_command_exits_after_the_scans_asked_for(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(SHORT, folder / "project" / SHORT.name)
    results: list[ScanResult] = []
    real_scan = watch.scan

    def counted(roots: list[str], **options: Any) -> ScanResult:
        results.append(real_scan(roots, **options))
        return results[-1]

    monkeypatch.setattr(watch, "scan", counted)
    out = StringIO()

    call_command(
        "import_sessions", "--watch", str(folder), "--scans", "3", "--interval", "0.001", stdout=out
    )

    assert [len(r.changed) for r in results] == [1, 0, 0]
    assert out.getvalue().count("changed") == 1  # a scan that found nothing new says nothing
    assert Execution.objects.count() == 1


def test_the_worker_scans_the_configured_folders_and_sends_itself_again(
    folder: Path, settings: Any, stub_broker: StubBroker
) -> None:
    from collection.jobs.actors import watch_imports

    shutil.copy(SHORT, folder / "project" / SHORT.name)
    settings.TRAININGDASH_IMPORT_WATCH = []
    watch_imports()
    assert Execution.objects.count() == 0 and stub_broker.queues["imports.DQ"].qsize() == 0

    settings.TRAININGDASH_IMPORT_WATCH = [str(folder)]
    watch_imports()

    assert Execution.objects.get().messages.count() == message_count(lines_of(SHORT))
    assert stub_broker.queues["imports.DQ"].qsize() == 1  # the next scan, delayed
    assert scan_configured() is not None and Execution.objects.count() == 1


def test_the_import_page_shows_watched_folders_and_files_being_written(
    client: Any, reviewer: Any, folder: Path, settings: Any
) -> None:
    path = folder / "project" / SHORT.name
    shutil.copy(SHORT, path)
    settings.TRAININGDASH_IMPORT_WATCH = [str(folder)]
    scan([str(folder)])
    written = ImportWatchFile.objects.get().mtime
    assert written is not None
    client.force_login(reviewer)

    with time_machine.travel(written + timedelta(seconds=10), tick=False):
        page = client.get(reverse("collection-import-list")).content.decode()
    assert str(folder.resolve()) in page and str(path.resolve()) in page
    assert "followed by the worker" in page and "being written" in page

    with time_machine.travel(written + timedelta(minutes=5), tick=False):
        page = client.get(reverse("collection-import-list")).content.decode()
    assert "being written" not in page and "1 imported" in page
