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
from collection.importers.merging import MessageKeys, ResponseMerger, response_id
from collection.importers.reading import Cursor, Numbered, read_json_lines
from collection.importers.subagents import parent_session_file, subagent_files
from collection.sessions.trajectory import SUBAGENT_TOOLS

# Line types only Claude Code transcripts have (stream-json has none of them).
OWN_TYPES = {"summary", "file-history-snapshot", "queue-operation"}
MAX_SUMMARIES = 10
ENVELOPE = {"cwd": "cwd", "git_branch": "gitBranch", "claude_code_version": "version"}


class ClaudeCodeTranscriptImporter(Importer):
    name = "claude_code"
    label = "Claude Code transcript"
    resumes = True

    @classmethod
    def recognises(cls, head: Head) -> bool:
        return any("sessionId" in r or r.get("type") in OWN_TYPES for r in head.records)

    def read(self, path: Path) -> Iterator[SessionFeed]:
        """One session per file; a sub-agent file next to its session reads the session."""
        path = parent_session_file(path) or path
        feed = SessionFeed(importer=self.name, file=path, fallback_id=path.stem)
        feed.entries = _Session(feed).entries()
        yield feed

    def resume(self, path: Path, checkpoint: dict[str, Any] | None) -> Iterator[SessionFeed]:
        """`read` from the checkpoint on. A file not yet holding a line that names its session
        (only snapshots and summaries so far) waits: stored now, it would be filed under its
        file name, and then again under its session id."""
        path = parent_session_file(path) or path
        if not checkpoint and not _names_its_session(path):
            return
        feed = SessionFeed(importer=self.name, file=path, fallback_id=path.stem, resumed=checkpoint)
        feed.entries = _Session(feed, watching=True).entries()
        yield feed


class _Session:
    """Reads a session; `watching`, from where the feed's `resumed` checkpoint stopped.

    A checkpoint is the reader's state at the end of the last complete line read, before the
    response still open there was released: that response and the lines held behind it are
    kept in it and released again, with whatever new lines continue them (the writer grows the
    stored response). Each sub-agent file has its own place, keys and open response in it.
    """

    def __init__(self, feed: SessionFeed, *, watching: bool = False) -> None:
        state = feed.resumed or {}
        self.feed = feed
        self.watching = watching
        self.cursor = _cursor(feed.file, state.get("cursor")) if watching else None
        if self.cursor is not None and self.cursor.offset == 0:
            state = feed.resumed = {}  # rotated: what was read before is not in this file
        self.keys = MessageKeys.restore(state.get("keys"))
        self.merger = ResponseMerger.restore(state.get("merger"))
        self.files = subagent_files(feed.file, feed.problems.add)
        # Sub-agent files read so far, each with where its next read starts (when watching).
        self.agents: dict[str, dict[str, Any]] = dict(state.get("agents", {}))
        self.done: set[str] = set(self.agents)
        self.links: dict[str, str] = dict(state.get("links", {}))  # agent id -> its tool use
        self.progress: dict[str, tuple[str, ResponseMerger]] = {
            agent: (link, ResponseMerger.restore(merger))
            for agent, (link, merger) in state.get("progress", {}).items()
        }
        self.subagents = {(d["agent_id"], d["source"]): d for d in state.get("subagents", [])}
        self.types: Counter[str] = Counter(state.get("types", {}))
        self.orphan = str(state.get("orphan", ""))  # a sub-agent's file without its session
        # Task/Agent calls of the session's own without a result yet.
        self.delegating: set[str] = set(state.get("delegating", []))
        if state:
            feed.session_id, feed.agent_id = state["session_id"], self.orphan
            feed.metadata = dict(state["metadata"])

    def entries(self) -> Iterator[Entry]:
        yield from self._resume_agents()
        merger = self.merger
        for item in read_json_lines(self.feed.file, self.feed.problems.add, self.cursor):
            self._note(item)
            for ready in merger.push(item):
                yield from self._dispatch(ready)
        checkpoint = self._checkpoint(merger) if self.watching else None
        for ready in merger.close():
            yield from self._dispatch(ready)
        yield from self._flush_progress()
        for agent_id in self.files:
            if agent_id not in self.done and not self._awaited(agent_id):
                yield from self._subagent(agent_id, self.links.get(agent_id, ""))
        subagents = list(self.subagents.values())
        self.feed.metadata |= {"line_types": dict(self.types), "subagents": subagents}
        if self.orphan:
            # Its turns are the agent's own (not a main agent's): count them as the session's.
            self.feed.reported_turns = len(self.keys.responses)
        if checkpoint is not None:
            links = {"links": self.links, "subagents": subagents, "agents": self.agents}
            mergers = [
                checkpoint["merger"],
                *(merger for _, merger in checkpoint["progress"].values()),
                *(agent["merger"] for agent in self.agents.values()),
            ]
            # The responses the next read releases again (the writer keeps their tallies).
            opened = [response_id(r) for m in mergers for _, r in m["open"]]
            self.feed.checkpoint = checkpoint | links | {"open_responses": opened}

    def _awaited(self, agent_id: str) -> bool:
        """Whether a sub-agent file nothing links to yet is left for a later read: a session
        still being written that has a delegation running will name the agent (its progress,
        its result), and the agent's turns are then stored under that delegation."""
        if not self.watching or not self.delegating or self.links.get(agent_id):
            return False
        return not (self.files[agent_id].meta or {}).get("toolUseId")

    def _checkpoint(self, merger: ResponseMerger) -> dict[str, Any]:
        """The state after the last complete line, before its open response is released."""
        assert self.cursor is not None
        self.feed.bytes_read += self.cursor.bytes_read
        metadata = {
            k: v for k, v in self.feed.metadata.items() if k not in ("line_types", "subagents")
        }
        return {
            "cursor": self.cursor.state(),
            "keys": self.keys.state(),
            "merger": merger.state(),
            "progress": {agent: [link, m.state()] for agent, (link, m) in self.progress.items()},
            "types": dict(self.types),
            "metadata": metadata,
            "session_id": self.feed.session_id,
            "orphan": self.orphan,
            "delegating": sorted(self.delegating),
        }

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
            self._note_delegations(record)
        if kind == "user":
            yield from self._subagent_of_result(record)
        yield self._entry(item, agent=self._own_agent(record))

    def _note_delegations(self, record: dict[str, Any]) -> None:
        content = _data(record, "message").get("content")
        for block in content if isinstance(content, list) else []:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "tool_use" and block.get("name") in SUBAGENT_TOOLS:
                self.delegating.add(str(block.get("id")))
            elif block.get("type") == "tool_result":
                self.delegating.discard(str(block.get("tool_use_id")))

    def _own_agent(self, record: dict[str, Any]) -> str:
        if self.orphan:
            return self.orphan
        if record.get("isSidechain") is True:  # older CLIs wrote sub-agent turns inline
            return str(record.get("agentId") or "sidechain")
        return ""

    def _entry(
        self,
        item: Numbered,
        *,
        parent: str = "",
        agent: str = "",
        file: Path | None = None,
        keys: MessageKeys | None = None,
    ) -> Entry:
        record = item.record
        if parent:
            record["parent_tool_use_id"] = parent
        return Entry(
            payload=record,
            uuid=(keys or self.keys).key(record)[:100],
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
            self._describe(_described(agent_id, link, "agent_progress"))
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
        self._describe(described | {"meta": found.meta})
        yield from self._read_agent(agent_id, found.path, {"link": link, "agent": agent_id})

    def _resume_agents(self) -> Iterator[Entry]:
        """What the sub-agent files read before have added since."""
        for agent_id, saved in list(self.agents.items()):
            found = self.files.get(agent_id)
            if found is None:
                continue
            cursor = saved["cursor"]
            st = found.path.stat()
            if (st.st_ino, st.st_size) != (cursor["inode"], cursor["offset"]):
                yield from self._read_agent(agent_id, found.path, saved)

    def _read_agent(self, agent_id: str, path: Path, saved: dict[str, Any]) -> Iterator[Entry]:
        """A sub-agent file's lines (when watching, from where its last read stopped)."""
        cursor = _cursor(path, saved.get("cursor")) if self.watching else None
        fresh = cursor is not None and cursor.offset == 0
        keys = MessageKeys() if fresh else MessageKeys.restore(saved.get("keys"))
        merger = ResponseMerger() if fresh else ResponseMerger.restore(saved.get("merger"))
        link = str(saved["link"])
        agent = "" if link else agent_id
        for item in read_json_lines(path, self.feed.problems.add, cursor):
            for ready in merger.push(item):
                yield self._entry(ready, parent=link, agent=agent, file=path, keys=keys)
        if cursor is not None:
            self.feed.bytes_read += cursor.bytes_read
            self.agents[agent_id] = {
                "cursor": cursor.state(),
                "keys": keys.state(),
                "merger": merger.state(),
                "link": link,
                "agent": agent_id,
            }
        for ready in merger.close():
            yield self._entry(ready, parent=link, agent=agent, file=path, keys=keys)

    def _describe(self, described: dict[str, Any]) -> None:
        # Once per agent and source, however often a resumed read meets it again.
        self.subagents.setdefault((described["agent_id"], described["source"]), described)


def _names_its_session(path: Path) -> bool:
    lines = read_json_lines(path, lambda problem: None, Cursor())
    return any(isinstance(item.record.get("sessionId"), str) for item in lines)


def _cursor(path: Path, state: dict[str, Any] | None) -> Cursor:
    """Where to read `path` from: the saved place, or its start when it was replaced, or
    shrank below that place (rotated: its lines are not the ones read before)."""
    cursor = Cursor.restore(state)
    st = path.stat()
    if cursor.inode != st.st_ino or st.st_size < cursor.offset:
        cursor = Cursor(inode=st.st_ino)
    return cursor


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
