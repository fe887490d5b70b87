"""The trajectory recorder as importers use it.

`TrajectoryRecorder` stores stream-json payloads and derives tool calls, actions and metrics.
Importers add three things: the message key comes from the importer (a response id, a
history index), turns of a sub-agent nobody delegated to are credited to that agent, and what
the stream-json shape has no field for (Claude Code's `toolUseResult`, a SWE-agent thought) is
handed to the recorder's handlers with the payload, so it lands in the rows they write anyway.
"""

from __future__ import annotations

from typing import Any

from collection.importers.base import Entry
from collection.models import AgentAction, AgentRole, Message
from collection.sessions.trajectory import TrajectoryRecorder


class ImportRecorder(TrajectoryRecorder):
    unlinked_agent = ""

    def record_entry(self, entry: Entry) -> Message | None:
        """Store an entry once; None when it was stored before (and nothing grew)."""
        self.unlinked_agent = entry.agent
        payload = entry.payload
        message, created = self.execution.append_message(payload, uuid=entry.uuid, step=self.step)
        if not created:
            return self._grow(message, payload)
        handler = getattr(self, f"_on_{payload.get('type')}", None)
        if handler:
            # The stored payload stays as read; only the handlers see the additions.
            handler(_derivable(entry), message)
        return message

    def _grow(self, message: Message, payload: dict[str, Any]) -> Message | None:
        """A stored response read again with more blocks (its file was cut mid-response when
        first imported): store the longer one and derive what the new blocks add."""
        if payload.get("type") != "assistant":
            return None
        old = (message.payload.get("message") or {}).get("content")
        new = payload["message"].get("content")
        if not (isinstance(old, list) and isinstance(new, list)):
            return None
        if len(new) <= len(old) or new[: len(old)] != old:
            return None
        message.payload = payload
        message.save(update_fields=["payload"])
        added = payload["message"] | {"content": new[len(old) :]}
        self._on_assistant(payload | {"message": added}, message)
        return message

    def _agent_for(self, parent_tool_use_id: str) -> tuple[str, str, AgentAction | None]:
        if not parent_tool_use_id and self.unlinked_agent:
            return self.unlinked_agent, AgentRole.SPECIALIST, None
        return super()._agent_for(parent_tool_use_id)


def _derivable(entry: Entry) -> dict[str, Any]:
    payload = entry.payload
    if entry.structured_result is not None:
        payload = payload | {"tool_use_result": entry.structured_result}
    if entry.reasoning and isinstance(payload["message"].get("content"), list):
        message = payload["message"]
        thought = {"type": "thinking", "thinking": entry.reasoning}
        payload = payload | {"message": message | {"content": [thought, *message["content"]]}}
    return payload
