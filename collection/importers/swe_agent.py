"""SWE-agent trajectories (`.traj`): the chat `history`, mapped onto stream-json payloads.

An assistant turn becomes an assistant message (its text, and its tool calls as tool_use
blocks); the observation answering it becomes a user message with tool_result blocks; its
`thought` becomes the reasoning of its actions. Older trajectories without function calling
carry the command in `action`: it becomes a tool call named after the command. Each payload
keeps the entry's other fields under `sweagent`. A trajectory has no session id: the sha256 of
the file is its identity.
"""

from __future__ import annotations

import json
import re
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
        feed.entries = _Mapper(feed, info, _model(document)).entries(history)
        yield feed


class _Mapper:
    def __init__(self, feed: SessionFeed, info: dict[str, Any], model: str) -> None:
        self.feed, self.info, self.model = feed, info, model
        self.waiting: list[str] = []  # tool calls the next observation answers
        self.last_tool = ""
        self.last_observation = ""

    def entries(self, history: list[Any]) -> Iterator[Entry]:
        for index, item in enumerate(history):
            if not isinstance(item, dict):
                problem = f"history[{index}] is not an object; skipped"
                self.feed.problems.add(TranscriptError(self.feed.file, None, problem))
                continue
            yield self._entry(index, item)
        self.feed.outcome = self._outcome()

    def _entry(self, index: int, item: dict[str, Any]) -> Entry:
        uuid = f"history-{index}"
        role = item.get("role")
        text = _text(item.get("content"))
        kept = {k: v for k, v in item.items() if k != "content"}
        if role == "assistant":
            payload = self._assistant(uuid, item, text)
            reasoning = str(item.get("thought") or "")
        elif role == "tool" or (
            role == "user" and item.get("message_type") == "observation" and self.waiting
        ):
            payload, reasoning = self._observation(item, text), ""
        elif role == "system":
            payload, reasoning = {"type": "system", "subtype": "system_prompt", "content": text}, ""
        else:
            payload, reasoning = {"type": "user", "message": {"role": "user", "content": text}}, ""
            self.feed.task_name = self.feed.task_name or _issue_title(text)
        return Entry(
            payload=payload | {"uuid": uuid, "sweagent": kept}, uuid=uuid, reasoning=reasoning
        )

    def _assistant(self, uuid: str, item: dict[str, Any], text: str) -> dict[str, Any]:
        blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        calls = [c for c in item.get("tool_calls") or [] if isinstance(c, dict)]
        uses = [_tool_use(c, f"{uuid}-call-{n}") for n, c in enumerate(calls)]
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

    def _observation(self, item: dict[str, Any], text: str) -> dict[str, Any]:
        ids = [str(i) for i in item.get("tool_call_ids") or []] or self.waiting
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
