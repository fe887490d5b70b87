"""The watch reads a growing transcript from where it stopped: only the new bytes, and the
execution it builds scan by scan is the one a single import of the finished file builds.

Real transcripts (tests/fixtures/transcripts) are written a line at a time, a scan after each
line, so every cut a live session can leave is met: between an assistant's tool_use and its
tool_result, between two lines of one response (one message.id), inside a line.
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from collection.importers.runner import import_file
from collection.importers.watch import LIVE_SECONDS, scan
from collection.models import TOKEN_FIELDS, Execution, ImportWatchFile, Task

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures" / "transcripts"
TOOL_HEAVY = FIXTURES / "spotter__tool_heavy.jsonl"
SUBAGENT = FIXTURES / "spotter__subagent.jsonl"
AGENT = FIXTURES / "spotter__subagent__agent-afb92ff.jsonl"
SESSION = "ae4a77f8"  # where a session with sub-agents is laid out (see the fixtures' README)
VOLATILE = {"imported_at", "file"}


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def records(raw: list[bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in raw if line.strip()]


def result_ids(record: dict[str, Any]) -> list[str]:
    content = record.get("message", {}).get("content") if record["type"] == "user" else None
    blocks = content if isinstance(content, list) else []
    return [b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"]


def picture(execution: Execution) -> dict[str, Any]:
    """Everything an import stores for a session, in a form two imports can be compared by."""
    messages = execution.messages.order_by("seq")
    calls = execution.tool_calls.select_related("requested_in", "answered_in")
    actions = execution.actions.select_related("parent")
    return {
        "messages": sorted(
            (m.uuid, m.type, m.subtype, m.parent_tool_use_id, json.dumps(m.payload, sort_keys=True))
            for m in messages
        ),
        # The session's own lines keep the file's order (a sub-agent's may come later).
        "main_order": [m.uuid for m in messages if not m.parent_tool_use_id],
        "calls": sorted(
            (
                c.tool_use_id,
                c.name,
                json.dumps(c.input, sort_keys=True),
                json.dumps(c.result, sort_keys=True),
                json.dumps(c.structured_result, sort_keys=True),
                c.is_error,
                c.requested_in.uuid if c.requested_in else None,
                c.answered_in.uuid if c.answered_in else None,
                c.agent_id,
                c.parent_tool_use_id,
            )
            for c in calls
        ),
        "actions": sorted(
            (
                a.agent_id,
                a.role,
                a.action_type,
                a.tool_name,
                a.tool_use_id,
                a.reasoning,
                a.parent.tool_use_id if a.parent else "",
            )
            for a in actions
        ),
        "totals": {name: getattr(execution, name) for name in TOKEN_FIELDS},
        "execution": (
            execution.status,
            execution.num_turns,
            execution.model,
            round(execution.cost_usd or 0, 9),
            execution.started_at,
            execution.completed_at,
            execution.duration_ms,
            execution.usage,
            execution.outcome,
            execution.success,
            execution.error,
            execution.is_partial,
            execution.performance_metrics,
        ),
        "task": (execution.task.name, execution.task.description),
        "metadata": {k: v for k, v in execution.metadata.items() if k not in VOLATILE},
    }


def assert_same(got: dict[str, Any], whole: dict[str, Any]) -> None:
    """Part by part, so that a failure says which part differs and how."""
    for part, expected in whole.items():
        if isinstance(expected, list) and part != "main_order":
            missing = [x for x in expected if x not in got[part]]
            extra = [x for x in got[part] if x not in expected]
            assert (part, missing, extra) == (part, [], [])
        assert (part, got[part]) == (part, expected)


def whole_import(session_file: Path) -> dict[str, Any]:
    """The finished file imported at once; then forgotten, for the watch to start afresh."""
    report = import_file(session_file)
    assert report.imported == 1 and not report.errors
    whole = picture(Execution.objects.get())
    Execution.objects.all().delete()
    Task.objects.all().delete()
    return whole


def settle(folder: Path, session_file: Path) -> None:
    """The scan after the session has gone quiet: it is closed (categorised, scored) then."""
    with time_machine.travel(timezone.now() + timedelta(seconds=LIVE_SECONDS + 1), tick=False):
        result = scan([str(folder)])
    assert result.settled == [str(session_file.resolve())] and result.changed == []


def grow(path: Path, data: bytes) -> None:
    with path.open("ab") as growing:
        growing.write(data)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "project").mkdir()
    return tmp_path


def test_a_transcript_watched_line_by_line_is_the_execution_a_whole_import_gives(
    folder: Path,
) -> None:
    raw = lines_of(TOOL_HEAVY)
    path = folder / "project" / TOOL_HEAVY.name
    shutil.copy(TOOL_HEAVY, path)
    whole = whole_import(path)
    path.write_bytes(b"")

    for line in raw:  # a scan after each line, and one with the next line half written
        grow(path, line[: len(line) // 2])
        scan([str(folder)])
        grow(path, line[len(line) // 2 :])
        scan([str(folder)])
    settle(folder, path)

    assert Execution.objects.count() == 1
    assert_same(picture(Execution.objects.get()), whole)


def test_a_cut_between_a_tool_call_and_its_result_leaves_it_running_then_pairs_them(
    folder: Path,
) -> None:
    raw = lines_of(TOOL_HEAVY)
    rows = records(raw)
    # The first response ends on a Bash call (line 5); its result is the first tool_result.
    call_line = next(i for i, r in enumerate(rows) if r["type"] == "assistant")
    call_id = rows[call_line]["message"]["content"][-1]["id"]
    path = folder / "project" / TOOL_HEAVY.name
    path.write_bytes(b"".join(raw[: call_line + 1]))
    scan([str(folder)])
    execution = Execution.objects.get()
    assert execution.status == "in_progress"
    assert execution.tool_calls.get(tool_use_id=call_id).answered_in is None

    result_line = next(i for i, r in enumerate(rows) if call_id in result_ids(r))
    grow(path, b"".join(raw[call_line + 1 : result_line + 1]))
    report = scan([str(folder)]).reports[0]

    call = execution.tool_calls.get(tool_use_id=call_id)
    assert call.answered_in is not None and call.answered_in.uuid == rows[result_line]["uuid"]
    assert report.bytes == len(b"".join(raw[call_line + 1 : result_line + 1]))


def test_a_response_cut_between_its_lines_is_one_message_with_every_block(folder: Path) -> None:
    raw = lines_of(TOOL_HEAVY)
    rows = records(raw)
    ids = [r["message"]["id"] if r["type"] == "assistant" else None for r in rows]
    # A response written over several lines (text, thinking, two tool calls).
    first = next(i for i in range(len(ids) - 1) if ids[i] and ids[i] == ids[i + 3])
    parts = [i for i, rid in enumerate(ids) if rid == ids[first]]
    path = folder / "project" / TOOL_HEAVY.name
    path.write_bytes(b"".join(raw[: first + 1]))
    scan([str(folder)])
    for end in parts[1:]:
        grow(path, b"".join(raw[len(lines_of(path)) : end + 1]))
        scan([str(folder)])

    response = Execution.objects.get().messages.get(uuid=ids[first])
    blocks = [b for i in parts for b in rows[i]["message"]["content"]]
    assert response.payload["message"]["content"] == blocks
    assert Execution.objects.get().messages.filter(type="assistant").count() == len(
        {rid for rid in ids[: parts[-1] + 1] if rid}
    )


def test_a_scan_reads_only_the_bytes_added_since_the_last(folder: Path) -> None:
    raw = lines_of(TOOL_HEAVY)
    path = folder / "project" / TOOL_HEAVY.name
    cuts = [0, 10, 17, 26, 31, len(raw)]
    read = []
    for start, end in zip(cuts, cuts[1:], strict=False):
        grow(path, b"".join(raw[start:end]))
        read.append(scan([str(folder)]).reports[0].bytes)
    assert read == [len(b"".join(raw[a:b])) for a, b in zip(cuts, cuts[1:], strict=False)]

    grow(path, raw[0][:30])  # half a line: read, and left for the next scan
    assert scan([str(folder)]).reports[0].bytes == 30
    stored = ImportWatchFile.objects.get(path=str(path.resolve()))
    assert stored.offset == len(b"".join(raw)) and stored.size == len(b"".join(raw)) + 30


def test_a_restart_in_the_middle_resumes_from_the_stored_checkpoint(folder: Path) -> None:
    raw = lines_of(TOOL_HEAVY)
    path = folder / "project" / TOOL_HEAVY.name
    shutil.copy(TOOL_HEAVY, path)
    whole = whole_import(path)
    half = 27  # inside the response of lines 27-30
    path.write_bytes(b"".join(raw[:half]))
    call_command("import_sessions", "--watch", str(folder), "--scans", "1", stdout=StringIO())

    grow(path, b"".join(raw[half:]))  # a new process: only the database remembers
    out = StringIO()
    call_command("import_sessions", "--watch", str(folder), "--scans", "1", stdout=out)
    settle(folder, path)

    assert_same(picture(Execution.objects.get()), whole)
    stored = ImportWatchFile.objects.get(path=str(path.resolve()))
    assert stored.resume["cursor"]["offset"] == len(b"".join(raw)) == stored.offset


def test_a_rotated_file_is_read_from_its_start_with_a_fresh_checkpoint(folder: Path) -> None:
    short = FIXTURES / "spotter__short.jsonl"
    path = folder / "project" / "session.jsonl"
    shutil.copy(TOOL_HEAVY, path)
    scan([str(folder)])
    replacement = folder / "project" / ".incoming"
    shutil.copy(short, replacement)
    replacement.replace(path)

    result = scan([str(folder)])

    assert result.rotated == [str(path.resolve())]
    assert result.reports[0].bytes == short.stat().st_size
    rotated = Execution.objects.get(session_id=records(lines_of(short))[-1]["sessionId"])
    assert rotated.messages.count() > 0
    assert ImportWatchFile.objects.get(path=str(path.resolve())).resume["cursor"]["offset"] == (
        short.stat().st_size
    )


def test_a_session_and_its_sub_agent_written_together_give_the_whole_import(
    folder: Path,
) -> None:
    main_raw, agent_raw = lines_of(SUBAGENT), lines_of(AGENT)
    main = folder / "project" / f"{SESSION}.jsonl"
    agents = folder / "project" / SESSION / "subagents"
    agents.mkdir(parents=True)
    agent = agents / "agent-afb92ff.jsonl"
    shutil.copy(SUBAGENT, main)
    shutil.copy(AGENT, agent)
    whole = whole_import(main)
    main.write_bytes(b"")
    agent.unlink()  # Claude Code makes it when the agent starts

    # The agent writes its k-th line just before the session logs its k-th progress line
    # about it, and a scan comes in between (the agent's file is then ahead of any mention).
    written = 0
    for index, line in enumerate(main_raw):
        if b'"agent_progress"' in line:
            grow(agent, agent_raw[written])
            written += 1
            scan([str(folder)])
        grow(main, line)
        if index % 3 == 0 or b'"agent_progress"' in line:
            scan([str(folder)])
    scan([str(folder)])
    settle(folder, main)

    assert written == len(agent_raw)
    assert Execution.objects.count() == 1
    assert_same(picture(Execution.objects.get()), whole)


def test_a_sub_agent_file_that_grows_alone_is_read_from_where_it_stopped(folder: Path) -> None:
    main_raw, agent_raw = lines_of(SUBAGENT), lines_of(AGENT)
    main = folder / "project" / f"{SESSION}.jsonl"
    agents = folder / "project" / SESSION / "subagents"
    agents.mkdir(parents=True)
    agent = agents / "agent-afb92ff.jsonl"
    first_progress = next(i for i, line in enumerate(main_raw) if b'"agent_progress"' in line)
    main.write_bytes(b"".join(main_raw[: first_progress + 1]))
    agent.write_bytes(b"".join(agent_raw[:5]))
    scan([str(folder)])

    grow(agent, b"".join(agent_raw[5:]))
    result = scan([str(folder)])

    assert result.changed == [str(main)] and result.reports[0].bytes == len(b"".join(agent_raw[5:]))
    stored = Execution.objects.get().messages.filter(parent_tool_use_id__gt="")
    responses = {r["message"]["id"] for r in records(agent_raw) if r["type"] == "assistant"}
    users = sum(1 for r in records(agent_raw) if r["type"] == "user")
    assert stored.count() == len(responses) + users
    row = ImportWatchFile.objects.get(path=str(agent))
    assert row.offset == agent.stat().st_size


def test_a_session_being_written_is_scored_once_it_has_gone_quiet(folder: Path) -> None:
    raw = lines_of(TOOL_HEAVY)
    path = folder / "project" / TOOL_HEAVY.name
    path.write_bytes(b"".join(raw[:5]))  # the prompt and a first Bash call
    scan([str(folder)])
    execution = Execution.objects.get()
    first_score = execution.training_example.quality_score
    assert execution.metadata["categorised"]["tools"] == ["Bash"]

    grow(path, b"".join(raw[5:]))  # more tools, a finished answer: read, not yet scored
    scan([str(folder)])
    execution.refresh_from_db()
    row = ImportWatchFile.objects.get(path=str(path.resolve()))
    assert row.running and execution.status == "completed"
    rows = records(raw)
    responses = {r["message"]["id"] for r in rows if r["type"] == "assistant"}
    assert execution.messages.count() == len(responses) + sum(
        1 for r in rows if r["type"] != "assistant"
    )
    assert execution.metadata["categorised"]["tools"] == ["Bash"]
    assert execution.training_example.quality_score == first_score

    settle(folder, path)

    execution.refresh_from_db()
    assert execution.metadata["categorised"]["tools"] == [
        "Bash",
        "Glob",
        "Read",
        "WebFetch",
        "WebSearch",
    ]
    assert execution.training_example.quality_score != first_score
    assert not ImportWatchFile.objects.get(path=str(path.resolve())).running
    assert scan([str(folder)]).reports == []  # closed once: the next scans leave it alone
