"""One session, one execution: collected live, mirrored through the SessionStore and imported
from its transcript, a real CLI session (scripted model) is stored once.

Expected counts come from the transcript file the CLI wrote and the messages the SDK yielded,
read here independently of the importers.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest
from claude_agent_sdk import (
    AgentDefinition,
    ClaudeAgentOptions,
    ResultMessage,
    list_subagents_from_store,
    project_key_for_directory,
    query,
)
from claude_agent_sdk.types import SessionKey

from collection.importers import import_file
from collection.lifecycle import Outcome, finish, open_execution
from collection.models import Execution, Source, Task, TaskStatus
from collection.scripted_model import scripted_env
from collection.sessions.collector import TrainingDataCollector
from collection.sessions.session_store import DatabaseSessionStore, list_sessions, load_entries
from tests.sessions import FIX_SCRIPT, make_workspace, scripted_options
from tests.test_collector import TASK

pytestmark = pytest.mark.django_db(transaction=True)
PROMPT = "Fix the failing test in test_calc.py"


def collect_live(work: Path, *, mirror: bool) -> list[Any]:
    store = DatabaseSessionStore() if mirror else None
    options = scripted_options(work, script=FIX_SCRIPT, session_store=store)
    collector = TrainingDataCollector()

    async def go() -> list[Any]:
        async with collector.collect_from_query(
            task=TASK, prompt=PROMPT, query_func=query, options=options, source=Source.SCRIPTED
        ) as messages:
            return [message async for message in messages]

    return asyncio.run(go())


def transcript_of(work: Path, session_id: str) -> Path:
    # The CLI writes it under CLAUDE_CONFIG_DIR/projects/<project key>/<session id>.jsonl.
    config = work.parent / f"{work.name}-cfg"
    (path,) = config.glob(f"projects/*/{session_id}.jsonl")
    return path


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def expected_keys(seen: list[Any], lines: list[dict[str, Any]]) -> tuple[set[str], int]:
    """Distinct uuids across the stream and the file, and the file's lines without one."""
    stream = {m.uuid for m in seen if getattr(m, "uuid", None)}
    stream |= {m.data["uuid"] for m in seen if getattr(m, "data", {}).get("uuid")}
    return stream | {line["uuid"] for line in lines if line.get("uuid")}, sum(
        1 for line in lines if not line.get("uuid")
    )


def tool_use_ids(lines: list[dict[str, Any]]) -> set[str]:
    return {
        block["id"]
        for line in lines
        if line.get("type") == "assistant"
        for block in line["message"]["content"]
        if block.get("type") == "tool_use"
    }


@pytest.mark.parametrize("mirror", [True, False], ids=["mirrored", "not-mirrored"])
def test_a_live_session_mirrored_and_imported_is_one_execution(
    tmp_path: Path, mirror: bool
) -> None:
    work = make_workspace(tmp_path / "work")
    seen = collect_live(work, mirror=mirror)
    result = next(m for m in seen if isinstance(m, ResultMessage))
    path = transcript_of(work, result.session_id)
    lines = lines_of(path)

    first = import_file(path)
    again = import_file(path)

    assert first.errors == [] and again.errors == []
    (execution,) = Execution.objects.all()
    assert execution.session_id == result.session_id and execution.source == Source.SCRIPTED
    uuids, without_uuid = expected_keys(seen, lines)
    keys = list(execution.messages.values_list("uuid", flat=True))
    with_uuid = [k for k in keys if not k.startswith("sha256:")]
    assert sorted(with_uuid) == sorted(uuids)  # every line once, no merged response copies
    assert len(keys) == len(uuids) + without_uuid
    assert set(execution.tool_calls.values_list("tool_use_id", flat=True)) == tool_use_ids(lines)
    assert execution.actions.count() == len(tool_use_ids(lines))
    # The live record stands: the stream's exact result and the verifier's verdict.
    assert (execution.status, execution.success) == (TaskStatus.COMPLETED, True)
    assert execution.num_turns == result.num_turns and execution.cost_usd == result.total_cost_usd
    assert execution.metadata["import_key"] == f"claude_code:{result.session_id}"
    assert list(Task.objects.values_list("name", flat=True)) == [TASK.name]


def test_the_mirror_gives_the_sdk_the_transcript_lines_of_a_live_session(tmp_path: Path) -> None:
    work = make_workspace(tmp_path / "work")
    seen = collect_live(work, mirror=True)
    result = next(m for m in seen if isinstance(m, ResultMessage))
    lines = lines_of(transcript_of(work, result.session_id))

    key: SessionKey = {
        "project_key": project_key_for_directory(work),
        "session_id": result.session_id,
    }
    loaded = load_entries(key)

    assert loaded is not None
    assert {e["uuid"] for e in loaded if e.get("uuid")} == {
        line["uuid"] for line in lines if line.get("uuid")
    }
    assert all("parentUuid" in e for e in loaded if e["type"] in ("user", "assistant"))
    assert not [e for e in loaded if e["type"] == "result"]
    assert [s["session_id"] for s in list_sessions(key["project_key"])] == [result.session_id]


def append(key: SessionKey, entries: list[Any]) -> None:
    anyio.run(DatabaseSessionStore().append, key, entries)


def user_line(uuid: str, text: str) -> dict[str, Any]:
    return {
        "type": "user",
        "uuid": uuid,
        "parentUuid": None,
        "sessionId": "sess-race",
        "message": {"role": "user", "content": [{"type": "text", "text": text}]},
    }


def test_a_transcript_mirrored_while_the_session_runs_is_folded_in_when_it_ends() -> None:
    key: SessionKey = {"project_key": "-work", "session_id": "sess-race"}
    live = open_execution(TASK, source=Source.SCRIPTED, session_id="sess-race")
    append(key, [user_line("u1", "Fix it"), {"type": "queue-operation"}])
    assert Execution.objects.count() == 2  # the live collector is still writing its own

    finish(live, Outcome(TaskStatus.COMPLETED, True))
    append(key, [user_line("u2", "And test it")])

    assert list(Execution.objects.values_list("pk", flat=True)) == [live.pk]
    uuids = [m.payload.get("uuid") for m in live.messages.order_by("seq")]
    assert uuids == ["u1", None, "u2"]  # the queue-operation line has none
    assert list(Task.objects.values_list("name", flat=True)) == [TASK.name]
    assert [s["session_id"] for s in list_sessions("-work")] == ["sess-race"]


def test_deleting_a_mirrored_live_session_keeps_the_execution() -> None:
    live = open_execution(TASK, source=Source.SCRIPTED, session_id="sess-keep")
    finish(live, Outcome(TaskStatus.COMPLETED, True))
    key: SessionKey = {"project_key": "-work", "session_id": "sess-keep"}
    append(key, [user_line("u1", "Fix it")])

    anyio.run(DatabaseSessionStore().delete, key)

    live.refresh_from_db()
    assert "mirror" not in live.metadata and live.messages.count() == 1
    assert live.training_example is not None
    assert list_sessions("-work") == []


def mirror_only(work: Path) -> list[Any]:
    """A real CLI session whose transcript is mirrored through the SessionStore, with no live
    collector: the mirror is the only record until the transcript is imported."""
    options = scripted_options(work, script=FIX_SCRIPT, session_store=DatabaseSessionStore())

    async def go() -> list[Any]:
        return [message async for message in query(prompt=PROMPT, options=options)]

    return asyncio.run(go())


def test_a_session_only_mirrored_then_imported_is_one_execution(tmp_path: Path) -> None:
    work = make_workspace(tmp_path / "work")
    result = next(m for m in mirror_only(work) if isinstance(m, ResultMessage))
    (mirror,) = Execution.objects.all()
    path = transcript_of(work, result.session_id)
    lines = lines_of(path)

    first = import_file(path)
    again = import_file(path)

    assert first.errors == [] and again.errors == []
    assert [s.status for s in first.sessions] == ["updated"]
    assert [s.status for s in again.sessions] == ["skipped"]
    (execution,) = Execution.objects.all()
    assert execution.pk == mirror.pk and execution.source == Source.IMPORTED
    # The mirror's rows stand, one per transcript line: no merged copy of a response.
    keys = list(execution.messages.values_list("uuid", flat=True))
    assert sorted(k for k in keys if not k.startswith("sha256:")) == sorted(
        line["uuid"] for line in lines if line.get("uuid")
    )
    assert len(keys) == len(lines)
    # What the import derives, once: every call with its result, an action per call.
    calls = execution.tool_calls.all()
    assert {c.tool_use_id for c in calls} == tool_use_ids(lines)
    assert all(c.answered_in_id is not None and c.result is not None for c in calls)
    assert execution.actions.count() == len(tool_use_ids(lines))
    assert execution.status == TaskStatus.COMPLETED and execution.training_example is not None
    assert execution.import_key == f"claude_code:{result.session_id}"
    key: SessionKey = {
        "project_key": project_key_for_directory(work),
        "session_id": result.session_id,
    }
    loaded = load_entries(key)
    # The SDK still reads the transcript's own lines back (in the order the store got them).
    assert loaded is not None and not [e for e in loaded if "merged_lines" in e]
    assert Counter(e.get("uuid") for e in loaded) == Counter(line.get("uuid") for line in lines)


def test_a_session_imported_then_mirrored_is_one_execution(tmp_path: Path) -> None:
    work = make_workspace(tmp_path / "work")
    options = scripted_options(work, script=FIX_SCRIPT)  # no store, no collector: a file only

    async def go() -> list[Any]:
        return [message async for message in query(prompt=PROMPT, options=options)]

    result = next(m for m in asyncio.run(go()) if isinstance(m, ResultMessage))
    path = transcript_of(work, result.session_id)
    lines = lines_of(path)
    report = import_file(path)
    (imported,) = Execution.objects.all()
    stored = imported.messages.count()
    key: SessionKey = {
        "project_key": project_key_for_directory(work),
        "session_id": result.session_id,
    }

    # The session resumed with the store: the SDK mirrors its transcript's lines, some of
    # them already imported (those with a uuid; a line without one is stored each time it is
    # appended, as the store's contract says), and a new one.
    append(key, [line for line in lines if line.get("uuid")])
    later = user_line("u-later", "And now the docs") | {"sessionId": result.session_id}
    append(key, [later])

    assert report.imported == 1
    (execution,) = Execution.objects.all()
    assert execution.pk == imported.pk and execution.metadata["mirror"]["subpath"] == ""
    # Each line once: the response lines the import merged are not stored again.
    assert execution.messages.count() == stored + 1
    assert execution.messages.filter(uuid="u-later").exists()
    loaded = load_entries(key)
    assert loaded is not None and loaded[-1]["uuid"] == "u-later"
    assert [s["session_id"] for s in list_sessions(key["project_key"])] == [result.session_id]
    again = import_file(path)
    assert again.errors == [] and Execution.objects.count() == 1


def test_a_live_session_s_sub_agent_transcript_lands_in_its_execution(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    params = {"subagent_type": "lister", "command": "ls"}
    options = ClaudeAgentOptions(
        cwd=str(workspace),
        env=scripted_env("subagent", params=params, config_dir=tmp_path / "claude-config"),
        allowed_tools=["Bash", "Read", "Agent"],
        agents={"lister": AgentDefinition(description="Lists files", prompt="List files.")},
        session_store=(store := RecordingStore()),
    )

    async def go() -> list[Any]:
        async with TrainingDataCollector().collect_from_query(
            task=TASK,
            prompt="Ask a helper what is here.",
            query_func=query,
            options=options,
            source=Source.SCRIPTED,
        ) as messages:
            return [message async for message in messages]

    seen = asyncio.run(go())
    sent = {m.uuid for m in seen if getattr(m, "uuid", None)}
    result = next(m for m in seen if isinstance(m, ResultMessage))
    (path,) = (tmp_path / "claude-config").glob(f"projects/*/{result.session_id}/subagents/*.jsonl")
    sub_lines = lines_of(path)
    spawner = next(m.parent_tool_use_id for m in seen if getattr(m, "parent_tool_use_id", None))

    (execution,) = Execution.objects.all()  # the live one: no mirror beside it
    assert execution.source == Source.SCRIPTED and execution.session_id == result.session_id
    key: SessionKey = {
        "project_key": project_key_for_directory(workspace),
        "session_id": result.session_id,
        "subpath": f"subagents/{path.stem}",
    }
    # The SDK reads the sub-agent's transcript back from the store: what it appended, in
    # order; a line the stream also sent is the stream's row with the transcript's fields
    # added, as for the main transcript (see session_store's docstring).
    loaded, appended = load_entries(key), store.appended[key["subpath"]]
    assert loaded is not None and len(loaded) == len(appended)
    assert [e.get("uuid") for e in loaded] == [e.get("uuid") for e in appended]
    assert all(set(e) >= set(a) for e, a in zip(loaded, appended, strict=True))
    unsent = [(e, a) for e, a in zip(loaded, appended, strict=True) if e.get("uuid") not in sent]
    assert unsent and all(e == a for e, a in unsent)
    assert {e["uuid"] for e in loaded if e.get("uuid")} == {
        line["uuid"] for line in sub_lines if line.get("uuid")
    }
    assert anyio.run(
        list_subagents_from_store, DatabaseSessionStore(), result.session_id, str(workspace)
    ) == [path.stem.removeprefix("agent-")]
    # Its lines sit under the call that started the sub-agent, as the importers nest them.
    uuids = [line["uuid"] for line in sub_lines if line.get("uuid")]
    rows = execution.messages.filter(uuid__in=uuids)
    assert rows.count() == len(uuids)
    assert set(rows.values_list("parent_tool_use_id", flat=True)) == {spawner}
    # Imported afterwards, the transcript adds no execution either.
    main = transcript_of_store(tmp_path / "claude-config", result.session_id)
    assert import_file(main).errors == [] and Execution.objects.count() == 1


class RecordingStore(DatabaseSessionStore):
    """The database store, noting what the SDK appended under each sub-agent subpath."""

    def __init__(self) -> None:
        self.appended: dict[str, list[Any]] = {}

    async def append(self, key: SessionKey, entries: list[Any]) -> None:
        if key.get("subpath"):
            self.appended.setdefault(key["subpath"], []).extend(json.loads(json.dumps(entries)))
        await super().append(key, entries)


def transcript_of_store(config: Path, session_id: str) -> Path:
    (path,) = config.glob(f"projects/*/{session_id}.jsonl")
    return path
