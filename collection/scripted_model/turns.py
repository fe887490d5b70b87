"""What a policy hands back: one assistant turn, or an API error to answer with."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

Block = dict[str, Any]


def stable_id(prefix: str, *parts: object) -> str:
    """An id that is a pure function of its parts, so replies stay deterministic."""
    digest = hashlib.sha256("|".join(map(str, (prefix, *parts))).encode()).hexdigest()
    return f"{prefix}_{digest[:24]}"


def text_block(text: str) -> Block:
    return {"type": "text", "text": text}


def thinking_block(thinking: str) -> Block:
    # The CLI sends thinking back on later turns with its signature; nothing checks it here.
    signature = base64.b64encode(hashlib.sha256(thinking.encode()).digest()).decode()
    return {"type": "thinking", "thinking": thinking, "signature": signature}


def tool_use_block(tool_id: str, name: str, tool_input: dict[str, Any]) -> Block:
    return {"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}


@dataclass(frozen=True)
class Turn:
    """One assistant reply: Anthropic content blocks and why the model stopped."""

    blocks: tuple[Block, ...]
    stop_reason: str = "end_turn"

    @classmethod
    def text(cls, text: str, *, thinking: str | None = None) -> Turn:
        lead = (thinking_block(thinking),) if thinking else ()
        return cls((*lead, text_block(text)), "end_turn")

    @classmethod
    def tool(
        cls,
        tool_id: str,
        name: str,
        tool_input: dict[str, Any],
        *,
        text: str | None = None,
        thinking: str | None = None,
    ) -> Turn:
        lead = (thinking_block(thinking),) if thinking else ()
        said = (text_block(text),) if text else ()
        return cls((*lead, *said, tool_use_block(tool_id, name, tool_input)), "tool_use")


class ScriptedModelError(Exception):
    """Answer the request with an Anthropic API error instead of a turn."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(f"{status} {error_type}: {message}")
        self.status = status
        self.error_type = error_type
        self.message = message

    def payload(self) -> dict[str, Any]:
        return {"type": "error", "error": {"type": self.error_type, "message": self.message}}


class RequestAborted(Exception):
    """The server is stopping (or the client left) while a policy was waiting."""
