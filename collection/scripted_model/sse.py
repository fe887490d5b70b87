"""Encode a turn as an Anthropic Messages API reply: a JSON body or server-sent events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .turns import Block

CHUNK = 24  # characters per delta; small enough that every block streams in several pieces


def message_payload(
    message_id: str,
    model: str,
    blocks: tuple[Block, ...],
    stop_reason: str | None,
    usage: dict[str, int],
) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": list(blocks),
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }


def event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def _chunks(text: str) -> list[str]:
    return [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)] or [""]


def _block_events(index: int, block: Block) -> Iterator[bytes]:
    kind = block["type"]
    if kind == "text":
        start: Block = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": c} for c in _chunks(block["text"])]
    elif kind == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": c} for c in _chunks(block["thinking"])]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif kind == "tool_use":
        start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        raw = json.dumps(block["input"])
        deltas = [{"type": "input_json_delta", "partial_json": c} for c in _chunks(raw)]
    else:
        raise ValueError(f"cannot stream a {kind!r} block")
    yield event(
        "content_block_start",
        {"type": "content_block_start", "index": index, "content_block": start},
    )
    for delta in deltas:
        yield event(
            "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        )
    yield event("content_block_stop", {"type": "content_block_stop", "index": index})


def stream_events(
    message_id: str, model: str, blocks: tuple[Block, ...], stop_reason: str, usage: dict[str, int]
) -> Iterator[bytes]:
    """The event sequence of a streamed reply, in the order the real API sends it."""
    head = message_payload(message_id, model, (), None, {**usage, "output_tokens": 1})
    yield event("message_start", {"type": "message_start", "message": head})
    yield event("ping", {"type": "ping"})
    for index, block in enumerate(blocks):
        yield from _block_events(index, block)
    yield event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": usage,
        },
    )
    yield event("message_stop", {"type": "message_stop"})
