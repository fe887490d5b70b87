"""The database SessionStore: the SDK's conformance suite, the rows it writes, a live session.

The SDK calls the store from its event loop and the ORM work runs in another thread, so these
tests use real transactions (`transaction=True`) rather than one wrapping test transaction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from asgiref.sync import sync_to_async
from claude_agent_sdk import (
    AgentDefinition,
    ClaudeAgentOptions,
    MirrorErrorMessage,
    ResultMessage,
    get_session_messages_from_store,
    list_sessions_from_store,
    list_subagents_from_store,
    project_key_for_directory,
    query,
)
from claude_agent_sdk.testing import run_session_store_conformance
from claude_agent_sdk.types import SessionKey, SessionStore

from collection.models import Execution, Message, Source, Task
from collection.scripted_model import scripted_env
from collection.sessions.session_store import DatabaseSessionStore

pytestmark = pytest.mark.django_db(transaction=True)

KEY: SessionKey = {"project_key": "-work-demo", "session_id": "sess-1"}
SUB_KEY: SessionKey = {**KEY, "subpath": "subagents/agent-a1b2"}
OPTIONAL_METHODS = ["list_sessions", "list_session_summaries", "delete", "list_subkeys"]


def user(uuid: str, text: str) -> dict[str, Any]:
    return {
        "type": "user",
        "uuid": uuid,
        "sessionId": "sess-1",
        "timestamp": "2025-01-01T00:00:00.000Z",
        "message": {"role": "user", "content": [{"type": "text", "text": text}]},
    }


def assistant(uuid: str, text: str) -> dict[str, Any]:
    return {
        "type": "assistant",
        "uuid": uuid,
        "message": {"role": "assistant", "content": [{"type": "text", "text": text}]},
    }


def append(store: DatabaseSessionStore, key: SessionKey, entries: list[Any]) -> None:
    anyio.run(store.append, key, entries)


def mirrored(key: SessionKey) -> Execution:
    subpath = key.get("subpath") or ""
    return Execution.objects.get(session_id=key["session_id"], metadata__mirror__subpath=subpath)


def payloads(execution: Execution) -> list[dict[str, Any]]:
    return [message.payload for message in execution.messages.order_by("seq")]


async def empty_store() -> DatabaseSessionStore:
    # The suite wants an empty store per contract; ours is the database, so clear the mirrors.
    await sync_to_async(Execution.objects.filter(source=Source.IMPORTED).delete)()
    return DatabaseSessionStore()


def test_store_passes_the_sdk_conformance_suite() -> None:
    anyio.run(run_session_store_conformance, empty_store)


def test_store_implements_every_optional_method_so_no_contract_is_skipped() -> None:
    for method in OPTIONAL_METHODS:
        assert getattr(DatabaseSessionStore, method) is not getattr(SessionStore, method)


def test_mirrored_entries_become_an_imported_execution_with_messages_in_order() -> None:
    entries = [
        user("u1", "Fix the failing test in calc.py"),
        assistant("a1", "Looking at calc.py."),
        {"type": "custom-title", "customTitle": "Calc fix"},
    ]
    append(DatabaseSessionStore(), KEY, entries[:2])
    append(DatabaseSessionStore(), KEY, entries[2:])

    execution = mirrored(KEY)
    assert execution.source == Source.IMPORTED and execution.status == "in_progress"
    assert execution.metadata["mirror"]["project_key"] == "-work-demo"
    assert payloads(execution) == entries
    assert [m.type for m in execution.messages.order_by("seq")] == [
        "user",
        "assistant",
        "custom-title",
    ]
    assert (execution.task.name, execution.task.category) == (
        "Fix the failing test in calc.py",
        "imported",
    )
    assert anyio.run(DatabaseSessionStore().load, KEY) == entries


def test_entries_with_a_uuid_are_stored_once_and_entries_without_one_every_time() -> None:
    store = DatabaseSessionStore()
    prompt, tag = user("u1", "Hello"), {"type": "tag", "tag": "demo"}
    append(store, KEY, [prompt, tag])
    append(store, KEY, [prompt, tag, assistant("a1", "Hi")])

    assert [p.get("uuid", p["type"]) for p in payloads(mirrored(KEY))] == ["u1", "tag", "tag", "a1"]


def test_a_session_without_a_prompt_files_a_placeholder_task_and_long_prompts_are_cut() -> None:
    store = DatabaseSessionStore()
    append(store, KEY, [{"type": "mode", "mode": "plan"}])
    append(store, {**KEY, "session_id": "sess-2"}, [user("u1", "word " * 40)])

    assert mirrored(KEY).task.name == "Mirrored session sess-1"
    long_name = Execution.objects.get(session_id="sess-2").task.name
    assert len(long_name) == 80 and long_name.startswith("word word")


def test_a_subagent_transcript_is_its_own_execution_linked_to_its_parent() -> None:
    store = DatabaseSessionStore()
    append(store, KEY, [user("u1", "Ask a helper")])
    append(store, SUB_KEY, [user("s1", "Run ls"), assistant("s2", "Listed.")])

    main, sub = mirrored(KEY), mirrored(SUB_KEY)
    assert sub.pk != main.pk and sub.task == main.task and sub.agent_id == "a1b2"
    assert sub.metadata["mirror"]["parent_execution_id"] == main.pk
    assert [p["uuid"] for p in payloads(sub)] == ["s1", "s2"]
    assert [p["uuid"] for p in payloads(main)] == ["u1"]
    assert "summary" not in sub.metadata["mirror"]


def test_an_early_subagent_transcript_is_linked_and_refiled_when_its_parent_arrives() -> None:
    store = DatabaseSessionStore()
    append(store, SUB_KEY, [user("s1", "Run ls")])
    assert "parent_execution_id" not in mirrored(SUB_KEY).metadata["mirror"]

    assert mirrored(SUB_KEY).task.name == "Mirrored session sess-1"

    append(store, KEY, [user("u1", "Ask a helper")])
    main, sub = mirrored(KEY), mirrored(SUB_KEY)
    assert sub.metadata["mirror"]["parent_execution_id"] == main.pk
    assert sub.task == main.task and main.task.name == "Ask a helper"
    assert list(Task.objects.values_list("name", flat=True)) == ["Ask a helper"]


def test_deleting_a_session_removes_its_executions_and_messages_but_not_others() -> None:
    store = DatabaseSessionStore()
    append(store, KEY, [user("u1", "Hello")])
    append(store, SUB_KEY, [user("s1", "Run ls")])
    append(store, {**KEY, "session_id": "sess-2"}, [user("u2", "Other")])

    anyio.run(store.delete, KEY)

    assert list(Execution.objects.values_list("session_id", flat=True)) == ["sess-2"]
    assert Message.objects.count() == 1


def test_a_real_sdk_session_is_mirrored_live_with_its_subagent(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    store = DatabaseSessionStore()

    messages = anyio.run(_run_subagent_session, store, workspace, tmp_path / "claude-config")

    result = next(m for m in messages if isinstance(m, ResultMessage))
    assert result.subtype == "success"
    assert not [m for m in messages if isinstance(m, MirrorErrorMessage)]
    key: SessionKey = {
        "project_key": project_key_for_directory(workspace),
        "session_id": result.session_id,
    }
    main = mirrored(key)
    assert main.task.name == "Ask a helper what is here."
    assert {"user", "assistant"} <= {p["type"] for p in payloads(main)}
    (sub,) = Execution.objects.exclude(pk=main.pk)
    assert sub.metadata["mirror"]["parent_execution_id"] == main.pk and sub.task == main.task
    assert Task.objects.count() == 1
    assert any("calc.py" in str(p) for p in payloads(sub))
    _reads_back_through_the_sdk(store, workspace, result.session_id, sub.agent_id)


async def _run_subagent_session(
    store: DatabaseSessionStore, workspace: Path, config_dir: Path
) -> list[Any]:
    params = {"subagent_type": "lister", "command": "ls"}
    options = ClaudeAgentOptions(
        cwd=str(workspace),
        env=scripted_env("subagent", params=params, config_dir=config_dir),
        allowed_tools=["Bash", "Read", "Agent"],
        agents={"lister": AgentDefinition(description="Lists files", prompt="List files.")},
        session_store=store,
    )
    return [
        message async for message in query(prompt="Ask a helper what is here.", options=options)
    ]


def _reads_back_through_the_sdk(
    store: DatabaseSessionStore, workspace: Path, session_id: str, agent_id: str
) -> None:
    """The SDK's own store readers see what the session wrote."""
    directory = str(workspace)
    (info,) = anyio.run(list_sessions_from_store, store, directory)
    assert info.session_id == session_id and info.first_prompt == "Ask a helper what is here."
    history = anyio.run(get_session_messages_from_store, store, session_id, directory)
    assert [m.type for m in history][:2] == ["user", "assistant"]
    assert anyio.run(list_subagents_from_store, store, session_id, directory) == [agent_id]
