"""Token usage that looks like the real API's, so the CLI reports a non-zero cost."""

from __future__ import annotations

import json
from typing import Any

from .turns import Block


def estimate_tokens(value: Any) -> int:
    """About four characters per token, like English text through Claude's tokenizer."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return max(1, len(text) // 4)


def request_usage(body: dict[str, Any], turn: int) -> dict[str, int]:
    """Input-side usage: the prompt prefix is cached on the first turn and read back later.

    The CLI marks system prompt, tools and the conversation so far with cache_control,
    so a real session writes the cache once and then mostly reads it.
    """
    messages = body.get("messages") or []
    prefix = estimate_tokens([body.get("system") or "", body.get("tools") or []])
    if turn == 0:
        return {
            "input_tokens": estimate_tokens(messages),
            "cache_creation_input_tokens": prefix,
            "cache_read_input_tokens": 0,
        }
    # Later turns: everything before the newest exchange is already cached.
    newest = messages[-2:]
    return {
        "input_tokens": max(1, estimate_tokens(messages[-1:]) // 8),
        "cache_creation_input_tokens": estimate_tokens(newest),
        "cache_read_input_tokens": prefix + estimate_tokens(messages[:-2]),
    }


def output_tokens(blocks: tuple[Block, ...]) -> int:
    return estimate_tokens(list(blocks))
