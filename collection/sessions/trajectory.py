"""The canonical trajectory: SDK messages as stream-json-shaped dicts, and how they are stored.

Every source (a live SDK session, a stream-json log, a mirrored transcript) ends up as payload
dicts shaped like the CLI's `--output-format stream-json` lines. `TrajectoryRecorder` stores
them in order on an execution and keeps the derived rows (tool calls paired with results,
agent actions, metrics) up to date as each one arrives.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from claude_agent_sdk import (
    AssistantMessage,
    ResultMessage,
    SystemMessage,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)
from django.db import transaction

from collection.lifecycle import record_result
from collection.models import AgentAction, AgentRole, Execution, Message, ToolCall
from collection.sanitize import storable_message

# Tools that start a sub-agent (the name changed across CLI versions).
SUBAGENT_TOOLS = {"Task", "Agent"}
MAIN_AGENT = "main"
# The model name the CLI gives the replies it makes up itself (API errors, "Not logged in").
SYNTHETIC_MODEL = "<synthetic>"

_BLOCK_TYPES = {
    TextBlock: "text",
    ThinkingBlock: "thinking",
    ToolUseBlock: "tool_use",
    ToolResultBlock: "tool_result",
}


def block_payload(block: Any) -> dict[str, Any]:
    kind = _BLOCK_TYPES.get(type(block))
    if kind is None:  # server tool blocks and whatever a newer SDK adds: keep, don't drop
        kind = type(block).__name__
    return {"type": kind, **dataclasses.asdict(block)}


def _content(content: Any) -> Any:
    return content if isinstance(content, str) else [block_payload(b) for b in content]


def to_payload(message: Any) -> dict[str, Any]:
    """One SDK message as a stream-json-shaped dict (JSON-safe, no information dropped)."""
    if isinstance(message, AssistantMessage):
        return {
            "type": "assistant",
            "uuid": message.uuid,
            "session_id": message.session_id,
            "parent_tool_use_id": message.parent_tool_use_id,
            "error": message.error,
            "message": {
                "id": message.message_id,
                "role": "assistant",
                "model": message.model,
                "content": _content(message.content),
                "stop_reason": message.stop_reason,
                "usage": message.usage,
            },
        }
    if isinstance(message, UserMessage):
        return {
            "type": "user",
            "uuid": message.uuid,
            "parent_tool_use_id": message.parent_tool_use_id,
            "tool_use_result": message.tool_use_result,
            "message": {"role": "user", "content": _content(message.content)},
        }
    if isinstance(message, SystemMessage):
        return {"type": "system", "subtype": message.subtype, **_jsonable(message.data)}
    if isinstance(message, ResultMessage):
        return {"type": "result", **_jsonable(dataclasses.asdict(message))}
    if dataclasses.is_dataclass(message) and not isinstance(message, type):
        return {"type": type(message).__name__, **_jsonable(dataclasses.asdict(message))}
    return {"type": type(message).__name__, "repr": repr(message)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


class TrajectoryRecorder:
    """Stores payloads on one execution and derives tool calls, actions and metrics."""

    def __init__(
        self,
        execution: Execution,
        *,
        step: str = "",
        delegations: dict[str, AgentAction] | None = None,
    ) -> None:
        self.execution = execution
        self.step = step
        # Sub-agent tool calls seen so far: tool_use_id -> the coordinator's action (read from
        # the stored actions unless the caller knows them: none, for an execution just made).
        if delegations is None:
            stored = execution.actions.filter(tool_name__in=SUBAGENT_TOOLS).exclude(tool_use_id="")
            delegations = {a.tool_use_id: a for a in stored}
        self._delegations: dict[str, AgentAction] = delegations
        self.result: dict[str, Any] | None = None
        # Whether a model ever answered: the CLI reports API failures as "<synthetic>" replies.
        self.reached_model = False
        self._thinking: dict[str, str] = {}

    def record(self, payload: dict[str, Any]) -> Message | None:
        """Store one payload (once) and update what derives from it; None if already stored."""
        payload = storable_message(payload)
        with transaction.atomic():
            message, created = self.execution.append_message(payload, step=self.step)
            if not created:
                return None
            handler = getattr(self, f"_on_{payload.get('type')}", None)
            if handler:
                handler(payload, message)
        return message

    # --- per message type ------------------------------------------------------------------

    def _on_system(self, payload: dict[str, Any], message: Message) -> None:
        if payload.get("subtype") != "init":
            return
        ex = self.execution
        ex.session_id = ex.session_id or payload.get("session_id", "")
        ex.model = payload.get("model", "") or ex.model
        ex.metadata = ex.metadata | {
            "cwd": payload.get("cwd"),
            "tools": payload.get("tools", []),
            "claude_code_version": payload.get("claude_code_version"),
            "permission_mode": payload.get("permissionMode"),
            "agents": payload.get("agents"),
        }
        ex.save(update_fields=["session_id", "model", "metadata"])

    def _on_assistant(self, payload: dict[str, Any], message: Message) -> None:
        body = payload.get("message") or {}
        if body.get("model") != SYNTHETIC_MODEL and not payload.get("error"):
            self.reached_model = True
        parent_id = payload.get("parent_tool_use_id") or ""
        agent_id, role, parent = self._agent_for(parent_id)
        # The CLI sends one model response as several messages (a block each) sharing the
        # response id: thinking arrives before the tool call it explains.
        response_id = str(body.get("id") or payload.get("uuid") or "")
        thinking = " ".join(
            [self._thinking.get(response_id, "")]
            + [
                b.get("thinking", "")
                for b in body.get("content", [])
                if b.get("type") == "thinking"
            ]
        ).strip()
        self._thinking[response_id] = thinking
        for block in body.get("content", []):
            if block.get("type") != "tool_use":
                continue
            ToolCall.objects.get_or_create(
                execution=self.execution,
                tool_use_id=block["id"],
                defaults={
                    "name": block.get("name", ""),
                    "input": block.get("input") or {},
                    "parent_tool_use_id": parent_id,
                    "agent_id": agent_id,
                    "requested_in": message,
                },
            )
            action = AgentAction.objects.create(
                execution=self.execution,
                agent_id=agent_id,
                role=role,
                action_type="tool_use",
                tool_name=block.get("name", ""),
                content={"input": block.get("input") or {}},
                reasoning=thinking,
                parent=parent,
                tool_use_id=block["id"],
            )
            if block.get("name") in SUBAGENT_TOOLS:
                self._delegations[block["id"]] = action
                self._promote_to_coordinator(action)

    def _on_user(self, payload: dict[str, Any], message: Message) -> None:
        content = (payload.get("message") or {}).get("content")
        if not isinstance(content, list):
            return
        for block in content:
            if block.get("type") != "tool_result":
                continue
            ToolCall.objects.filter(
                execution=self.execution, tool_use_id=block.get("tool_use_id")
            ).update(
                result=block.get("content"),
                is_error=bool(block.get("is_error")),
                structured_result=payload.get("tool_use_result"),
                answered_in=message,
            )

    def _on_result(self, payload: dict[str, Any], message: Message) -> None:
        self.result = payload
        record_result(self.execution, payload, step=self.step)

    # --- agents ----------------------------------------------------------------------------

    def _agent_for(self, parent_tool_use_id: str) -> tuple[str, str, AgentAction | None]:
        """Who is speaking: the main agent, or the sub-agent started by that tool call."""
        if not parent_tool_use_id:
            return MAIN_AGENT, AgentRole.EXECUTOR, None
        delegation = self._delegations.get(parent_tool_use_id)
        subagent_type = (
            (delegation.content.get("input") or {}).get("subagent_type") if delegation else None
        )
        return (
            subagent_type or f"subagent-{parent_tool_use_id[-8:]}",
            AgentRole.SPECIALIST,
            delegation,
        )

    def _promote_to_coordinator(self, action: AgentAction) -> None:
        # An agent that delegates is the session's coordinator, for all its actions.
        AgentAction.objects.filter(execution=self.execution, agent_id=action.agent_id).update(
            role=AgentRole.COORDINATOR
        )
