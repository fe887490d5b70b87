"""Where Claude Code keeps a session's sub-agent transcripts, and which session a file is in.

~/.claude/projects/<project>/<session>.jsonl
~/.claude/projects/<project>/<session>/subagents/agent-<id>.jsonl   (+ agent-<id>.meta.json)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collection.importers.base import TranscriptError

MAX_META_BYTES = 1024 * 1024


@dataclass
class SubagentFile:
    agent_id: str
    path: Path
    meta: dict[str, Any] | None


def is_subagent_path(path: Path) -> bool:
    return path.parent.name == "subagents" and path.name.startswith("agent-")


def parent_session_file(path: Path) -> Path | None:
    """The main transcript a sub-agent file belongs to, when it is there beside it."""
    if not is_subagent_path(path):
        return None
    session_dir = path.parent.parent
    parent = session_dir.parent / f"{session_dir.name}.jsonl"
    return parent if parent.is_file() else None


def subagent_files(
    session_file: Path, on_problem: Callable[[TranscriptError], None]
) -> dict[str, SubagentFile]:
    """The session's sub-agent transcripts by agent id, in name order."""
    folder = session_file.parent / session_file.stem / "subagents"
    if not folder.is_dir():
        return {}
    found = {}
    for path in sorted(folder.glob("agent-*.jsonl")):
        agent_id = path.stem.removeprefix("agent-")
        meta = _meta(path.with_name(f"{path.stem}.meta.json"), on_problem)
        found[agent_id] = SubagentFile(agent_id, path, meta)
    return found


def _meta(path: Path, on_problem: Callable[[TranscriptError], None]) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    if path.stat().st_size > MAX_META_BYTES:
        on_problem(TranscriptError(path, 1, f"larger than {MAX_META_BYTES} bytes; ignored"))
        return None
    try:
        value = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        on_problem(TranscriptError(path, 1, f"unreadable sub-agent metadata: {exc}"))
        return None
    if not isinstance(value, dict):
        on_problem(TranscriptError(path, 1, "sub-agent metadata is not a JSON object"))
        return None
    return value
