"""SWE-agent trajectories (`.traj`): the chat `history`, mapped onto stream-json payloads.

An assistant turn becomes an assistant message (its text, and its tool calls as tool_use
blocks); the observation answering it becomes a user message with tool_result blocks; its
`thought` becomes the reasoning of its actions. Older trajectories without function calling
carry the command in `action`: it becomes a tool call named after the command, and their
observations are `user` entries (with no `message_type` in the oldest versions). The
demonstration shown to the model (`is_demo` entries) is kept as a system message, so the task is
named after the instance's own issue. Steps in `trajectory` past the last one the history shows
(the final `submit`, in some versions) are added at the end. A tool-call id the model reused gets
a `#n` suffix from its second use on, so every call keeps its own result. Each payload keeps the
entry's other fields under `sweagent`. A trajectory has no session id: the sha256 of the file is
its identity.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from collection.importers.base import Entry, Head, Importer, SessionFeed, TranscriptError
from collection.importers.reading import read_json_document
from collection.lifecycle import Outcome
from collection.models import TaskStatus

_HEAD = re.compile(r'^\s*\{\s*"(trajectory|history|info|environment|replay_config)"\s*:')
_ISSUE = re.compile(r"ISSUE:\s*\n\s*(\S[^\n]*)")


class SweAgentImporter(Importer):
    name = "swe_agent"
    label = "SWE-agent trajectory"

    @classmethod
    def recognises(cls, head: Head) -> bool:
        return head.path.suffix == ".traj" or bool(_HEAD.match(head.text))

    def read(self, path: Path) -> Iterator[SessionFeed]:
        document, digest = read_json_document(path)
        history = document.get("history") if isinstance(document, dict) else None
        if not isinstance(history, list):
            raise TranscriptError(path, 1, "no 'history' list: not a SWE-agent trajectory")
        info = document.get("info") if isinstance(document.get("info"), dict) else {}
        feed = SessionFeed(importer=self.name, file=path, fallback_id=f"sha256:{digest[:40]}")
        feed.metadata = _metadata(document, info)
        _reported_totals(feed, info)
        steps = document.get("trajectory")
        mapper = _Mapper(feed, info, _model(document))
        feed.entries = mapper.entries(history, steps if isinstance(steps, list) else [])
        yield feed


class _Mapper:
    def __init__(self, feed: SessionFeed, info: dict[str, Any], model: str) -> None:
        self.feed, self.info, self.model = feed, info, model
        self.waiting: list[str] = []  # tool calls the next observation answers
        self.last_tool = ""
        self.last_observation = ""
        self.steps = 0  # assistant turns seen: the trajectory steps the history covers
        self.uses: Counter[str] = Counter()  # tool-call ids seen, for reused ones
        self.renamed: dict[str, str] = {}  # a reused id -> the id its latest use was given

    def entries(self, history: list[Any], steps: list[Any]) -> Iterator[Entry]:
        for index, item in enumerate(history):
            if not isinstance(item, dict):
                problem = f"history[{index}] is not an object; skipped"
                self.feed.problems.add(TranscriptError(self.feed.file, None, problem))
                continue
            yield self._entry(f"history-{index}", item)
        yield from self._trailing_steps(steps)
        self.feed.outcome = self._outcome()

    def _trailing_steps(self, steps: list[Any]) -> Iterator[Entry]:
        """Steps the history stops short of (the final submit): an action and its output."""
        last = self.steps - 1
        if self.waiting and 0 <= last < len(steps) and isinstance(steps[last], dict):
            # The history's last action has its output only in the trajectory.
            answer: dict[str, Any] = {"role": "user", "content": steps[last].get("observation")}
            yield self._entry(f"trajectory-{last}-observation", answer)
        for index in range(self.steps, len(steps)):
            step = steps[index]
            if not isinstance(step, dict) or not str(step.get("action") or "").strip():
                continue
            turn = {"role": "assistant", "content": step.get("response") or ""} | {
                k: step[k] for k in ("thought", "action") if k in step
            }
            yield self._entry(f"trajectory-{index}", turn)
            observation = {"role": "user", "content": step.get("observation") or ""}
            yield self._entry(f"trajectory-{index}-observation", observation)

    def _entry(self, uuid: str, item: dict[str, Any]) -> Entry:
        role = item.get("role")
        text = _text(item.get("content"))
        kept = {k: v for k, v in item.items() if k != "content"}
        payload: dict[str, Any]
        if role == "system" or item.get("is_demo"):
            # A demonstration is prompt context, not the instance's task or the agent's turn.
            subtype = "demonstration" if item.get("is_demo") else "system_prompt"
            payload, reasoning = {"type": "system", "subtype": subtype, "content": text}, ""
        elif role == "assistant":
            payload = self._assistant(uuid, item, text)
            reasoning = str(item.get("thought") or "")
        elif role == "tool" or self._is_observation(item):
            payload, reasoning = self._observation(item, text), ""
        else:
            payload, reasoning = {"type": "user", "message": {"role": "user", "content": text}}, ""
            self.feed.task_name = self.feed.task_name or _issue_title(text)
        return Entry(
            payload=payload | {"uuid": uuid, "sweagent": kept}, uuid=uuid, reasoning=reasoning
        )

    def _is_observation(self, item: dict[str, Any]) -> bool:
        """A user entry answering the last action (older versions give it no message_type)."""
        if item.get("role") != "user" or item.get("is_demo") or not self.waiting:
            return False
        return item.get("message_type") in (None, "observation")

    def _assistant(self, uuid: str, item: dict[str, Any], text: str) -> dict[str, Any]:
        self.steps += 1
        blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        calls = [c for c in item.get("tool_calls") or [] if isinstance(c, dict)]
        uses = [self._own_id(_tool_use(c, f"{uuid}-call-{n}")) for n, c in enumerate(calls)]
        action = str(item.get("action") or "").strip()
        if not uses and action:
            uses = [
                {
                    "type": "tool_use",
                    "id": f"{uuid}-action",
                    "name": action.split()[0],
                    "input": {"command": action},
                }
            ]
        blocks += uses
        self.waiting = [u["id"] for u in uses]
        self.last_tool = uses[-1]["name"] if uses else self.last_tool
        message = {"id": uuid, "role": "assistant", "model": self.model, "content": blocks}
        return {"type": "assistant", "message": message}

    def _own_id(self, use: dict[str, Any]) -> dict[str, Any]:
        """Calls are paired with results by id: a reused id gets `#n`, deterministically."""
        original = use["id"]
        self.uses[original] += 1
        if self.uses[original] > 1:
            use["id"] = f"{original}#{self.uses[original]}"
        self.renamed[original] = use["id"]
        return use

    def _observation(self, item: dict[str, Any], text: str) -> dict[str, Any]:
        stated = [self.renamed.get(str(i), str(i)) for i in item.get("tool_call_ids") or []]
        ids = stated or self.waiting
        self.waiting = []
        self.last_observation = text
        blocks = [{"type": "tool_result", "tool_use_id": i, "content": text} for i in ids]
        return {"type": "user", "message": {"role": "user", "content": blocks}}

    def _outcome(self) -> Outcome:
        exit_status = str(self.info.get("exit_status") or "")
        submitted = "submitted" in exit_status or (not exit_status and self.last_tool == "submit")
        text = self.info.get("submission") or (self.last_observation if submitted else None)
        if submitted:
            return Outcome(TaskStatus.COMPLETED, text=text)
        if exit_status:
            return Outcome(
                TaskStatus.FAILED, success=False, error=f"exit status: {exit_status}", text=text
            )
        return Outcome(
            TaskStatus.IN_PROGRESS, error="trajectory ends before a submit", partial=True, text=text
        )


def _tool_use(call: dict[str, Any], fallback_id: str) -> dict[str, Any]:
    function = call.get("function")
    if not isinstance(function, dict):
        function = {}
    arguments = function.get("arguments")
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
    except ValueError:
        parsed = {"arguments": arguments}
    return {
        "type": "tool_use",
        "id": str(call.get("id") or fallback_id),
        "name": str(function.get("name") or ""),
        "input": parsed if isinstance(parsed, dict) else {"arguments": parsed},
    }


def _text(content: Any) -> str:
    if isinstance(content, list):  # newer versions: [{"type": "text", "text": ...}]
        return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return "" if content is None else str(content)


def _model(document: dict[str, Any]) -> str:
    config = document.get("replay_config")
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except ValueError:
            return ""
    if not isinstance(config, dict):
        return ""
    try:
        return str(config["agent"]["model"]["name"])
    except (KeyError, TypeError):
        return ""


def _metadata(document: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {"sweagent_info": info} if info else {}
    if isinstance(document.get("environment"), str):
        meta["environment"] = document["environment"]
    return meta


def _reported_totals(feed: SessionFeed, info: dict[str, Any]) -> None:
    stats = info.get("model_stats")
    if not isinstance(stats, dict):
        return
    feed.reported_usage = {
        "input_tokens": int(stats.get("tokens_sent") or 0),
        "output_tokens": int(stats.get("tokens_received") or 0),
    }
    if isinstance(stats.get("instance_cost"), int | float):
        feed.reported_cost = float(stats["instance_cost"])
    if isinstance(stats.get("api_calls"), int):
        feed.reported_turns = stats["api_calls"]


def _issue_title(text: str) -> str:
    """SWE-agent prompts wrap the issue in boilerplate: its first line names the task better."""
    found = _ISSUE.search(text)
    return found.group(1).strip() if found else ""
