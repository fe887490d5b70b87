"""Claude Code transcripts (`~/.claude/projects/<project>/<session>.jsonl`).

Every line is kept, whatever its type (user, assistant, system, summary, progress,
file-history-snapshot, queue-operation and types added later), verbatim but for two things:
the lines of one model response are merged into one message (see `merging`), and sub-agent
lines get `parent_tool_use_id`, the Task/Agent call that started them, as SDK messages have.

Sub-agents are stored in their parent's execution, as the live collector stores them: a
sub-agent transcript (`<session>/subagents/agent-<id>.jsonl`) is read where the parent first
mentions the agent (its first `agent_progress` line, or the Task result naming its agentId),
so its turns sit between the Task call and its result, become specialist actions under the
coordinator's delegation, and their tool calls carry the parent's tool-use id. Without the
file, the sub-agent's messages embedded in the `agent_progress` lines stand in for it. A file
nobody links to (the auto-compaction agent) is read after the session, credited to its own
agent id. A sub-agent file whose session is not there is imported on its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from collection.importers.base import Entry, Head, Importer, SessionFeed
from collection.importers.merging import MessageKeys, ResponseMerger
from collection.importers.reading import Numbered, read_json_lines
from collection.importers.subagents import parent_session_file, subagent_files

# Line types only Claude Code transcripts have (stream-json has none of them).
OWN_TYPES = {"summary", "file-history-snapshot", "queue-operation"}
MAX_SUMMARIES = 10
ENVELOPE = {"cwd": "cwd", "git_branch": "gitBranch", "claude_code_version": "version"}


class ClaudeCodeTranscriptImporter(Importer):
    name = "claude_code"
    label = "Claude Code transcript"

    @classmethod
    def recognises(cls, head: Head) -> bool:
        return any("sessionId" in r or r.get("type") in OWN_TYPES for r in head.records)

    def read(self, path: Path) -> Iterator[SessionFeed]:
        """One session per file; a sub-agent file next to its session reads the session."""
        path = parent_session_file(path) or path
        feed = SessionFeed(importer=self.name, file=path, fallback_id=path.stem)
        feed.entries = _Session(feed).entries()
        yield feed


class _Session:
    def __init__(self, feed: SessionFeed) -> None:
        self.feed = feed
        self.keys = MessageKeys()
        self.files = subagent_files(feed.file, feed.problems.add)
        self.done: set[str] = set()
        self.links: dict[str, str] = {}  # agent id -> the tool use that started it
        self.progress: dict[str, tuple[str, ResponseMerger]] = {}
        self.subagents: list[dict[str, Any]] = []
        self.types: Counter[str] = Counter()
        self.orphan = ""  # the agent id, when the file is a sub-agent's without its session

    def entries(self) -> Iterator[Entry]:
        merger = ResponseMerger()
        for item in read_json_lines(self.feed.file, self.feed.problems.add):
            self._note(item)
            for ready in merger.push(item):
                yield from self._dispatch(ready)
        for ready in merger.close():
            yield from self._dispatch(ready)
        yield from self._flush_progress()
        for agent_id in self.files:
            if agent_id not in self.done:
                yield from self._subagent(agent_id, self.links.get(agent_id, ""))
        self.feed.metadata |= {"line_types": dict(self.types), "subagents": self.subagents}
        if self.orphan:
            # Its turns are the agent's own (not a main agent's): count them as the session's.
            self.feed.reported_turns = len(self.keys.responses)

    # --- the session's own lines -----------------------------------------------------------

    def _note(self, item: Numbered) -> None:
        record, meta = item.record, self.feed.metadata
        self.types[str(record.get("type"))] += 1
        if self.types.total() == 1 and record.get("isSidechain") is True:
            self._become_orphan(str(record.get("agentId") or ""))
        if not self.feed.session_id and isinstance(record.get("sessionId"), str):
            self.feed.session_id = record["sessionId"]
        for key, name in ENVELOPE.items():
            if key not in meta and isinstance(record.get(name), str) and record[name]:
                meta[key] = record[name]
        if record.get("type") == "summary" and isinstance(record.get("summary"), str):
            summaries = meta.setdefault("summaries", [])
            if len(summaries) < MAX_SUMMARIES:
                summaries.append(record["summary"])
        if record.get("type") == "system" and record.get("subtype") == "compact_boundary":
            meta["compactions"] = meta.get("compactions", 0) + 1

    def _become_orphan(self, agent_id: str) -> None:
        if not agent_id:
            return
        self.orphan = self.feed.agent_id = agent_id
        self.feed.metadata |= {"subagent_without_session": True, "kind": _kind(agent_id)}

    def _dispatch(self, item: Numbered) -> Iterator[Entry]:
        record = item.record
        kind = record.get("type")
        if kind == "progress" and _data(record).get("type") == "agent_progress":
            yield from self._agent_progress(item)
            return
        if kind in ("user", "assistant"):
            yield from self._flush_progress()
        if kind == "user":
            yield from self._subagent_of_result(record)
        yield self._entry(item, agent=self._own_agent(record))

    def _own_agent(self, record: dict[str, Any]) -> str:
        if self.orphan:
            return self.orphan
        if record.get("isSidechain") is True:  # older CLIs wrote sub-agent turns inline
            return str(record.get("agentId") or "sidechain")
        return ""

    def _entry(
        self, item: Numbered, *, parent: str = "", agent: str = "", file: Path | None = None
    ) -> Entry:
        record = item.record
        if parent:
            record["parent_tool_use_id"] = parent
        return Entry(
            payload=record,
            uuid=self.keys.key(record)[:100],
            line=item.line,
            file=file,
            agent=agent,
            structured_result=record.get("toolUseResult") if record.get("type") == "user" else None,
        )

    # --- sub-agents ------------------------------------------------------------------------

    def _agent_progress(self, item: Numbered) -> Iterator[Entry]:
        record = item.record
        data = _data(record)
        agent_id = str(data.get("agentId") or "")
        tool_use_id = str(record.get("parentToolUseID") or "")
        if agent_id and tool_use_id:
            self.links.setdefault(agent_id, tool_use_id)
        yield self._entry(item, agent=self._own_agent(record))
        if not agent_id:
            return
        if agent_id in self.files:
            if agent_id not in self.done:
                yield from self._subagent(agent_id, self.links.get(agent_id, ""))
        elif isinstance(data.get("message"), dict):
            yield from self._progress_turn(agent_id, data["message"], item.line)

    def _progress_turn(self, agent_id: str, message: dict[str, Any], line: int) -> Iterator[Entry]:
        """A sub-agent message known only from the parent's progress line."""
        if agent_id not in self.progress:
            link = self.links.get(agent_id, "")
            self.progress[agent_id] = (link, ResponseMerger())
            self.subagents.append(_described(agent_id, link, "agent_progress"))
        link, merger = self.progress[agent_id]
        record = message | {"isSidechain": True, "agentId": agent_id}
        record.setdefault("sessionId", self.feed.session_id)
        for ready in merger.push(Numbered(line, record)):
            yield self._entry(ready, parent=link, agent="" if link else agent_id)

    def _flush_progress(self) -> Iterator[Entry]:
        for agent_id, (link, merger) in self.progress.items():
            for ready in merger.close():
                yield self._entry(ready, parent=link, agent="" if link else agent_id)

    def _subagent_of_result(self, record: dict[str, Any]) -> Iterator[Entry]:
        """A Task result names its agent: read the agent's file first if not read yet."""
        result = record.get("toolUseResult")
        if not isinstance(result, dict) or not result.get("agentId"):
            return
        agent_id = str(result["agentId"])
        content = _data(record, "message").get("content")
        for block in content if isinstance(content, list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                self.links.setdefault(agent_id, str(block.get("tool_use_id") or ""))
        if agent_id in self.files and agent_id not in self.done:
            yield from self._subagent(agent_id, self.links.get(agent_id, ""))

    def _subagent(self, agent_id: str, link: str) -> Iterator[Entry]:
        self.done.add(agent_id)
        found = self.files[agent_id]
        link = link or str((found.meta or {}).get("toolUseId") or "")
        described = _described(agent_id, link, "file") | {"file": str(found.path)}
        self.subagents.append(described | {"meta": found.meta})
        merger = ResponseMerger()
        agent = "" if link else agent_id
        for item in read_json_lines(found.path, self.feed.problems.add):
            for ready in merger.push(item):
                yield self._entry(ready, parent=link, agent=agent, file=found.path)
        for ready in merger.close():
            yield self._entry(ready, parent=link, agent=agent, file=found.path)


def _described(agent_id: str, link: str, source: str) -> dict[str, Any]:
    return {
        "agent_id": agent_id,
        "tool_use_id": link or None,
        "source": source,
        "kind": _kind(agent_id),
    }


def _kind(agent_id: str) -> str:
    return "compaction" if agent_id.startswith("acompact") else "subagent"


def _data(record: dict[str, Any], key: str = "data") -> dict[str, Any]:
    value = record.get(key)
    return value if isinstance(value, dict) else {}
