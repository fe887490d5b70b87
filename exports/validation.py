"""Checks every export runs on every row before writing it, whatever the format.

    problems = check_row("jsonl", row, options)   # [] when the row may be written
    estimate_tokens(row)                           # the number the size check uses

The pipeline runs these after the format's own `validate`; a row with any problem is left out and
counted, never written broken.

- Conversations (`messages`, the OpenAI / Hugging Face chat shape): roles in order (a system or
  developer message only first, then user; a `tool` message only answering a call of the
  assistant message before it), every tool call answered before the conversation moves on, no
  empty turns (a user message without text, an assistant message with neither text nor tool
  calls), at least one assistant turn (what a trainer learns from) and no trailing user turn. A
  tool result may be empty: commands that print nothing are real observations. A conversation
  may end on a tool result (a session cut off mid-turn): the assistant turns before it are sound.
- Size, for every format: `estimate_tokens(row)` against `options.max_tokens`.

The token estimate is one character in four (the usual rule of thumb for English and code with
BPE tokenizers), counted over every string in the row — message text, tool arguments, the tool
schemas a trainer renders into the prompt — plus every number as its decimal text; keys and JSON
punctuation are left out, since a chat template replaces them with its own tokens.
"""

from __future__ import annotations

import math
from typing import Any

from exports.options import ExportOptions

ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
CHARS_PER_TOKEN = 4


def check_row(
    format_name: str, row: dict[str, Any], options: ExportOptions, json_size: int | None = None
) -> list[str]:
    """Everything wrong with `row` that no format may write; empty when it may be written.
    `json_size`, the length of the row's JSON when the caller has it, spares counting a row
    that can't be over the size limit."""
    problems: list[str] = []
    messages = row.get("messages")
    if messages is not None:
        problems += check_messages(messages)
    # Each string and number the estimate counts takes at least as many bytes in the JSON (a
    # float's shorter exponent there is made up by the separator after it): a row whose JSON
    # fits the limit's characters fits the limit.
    if json_size is not None and json_size <= options.max_tokens * CHARS_PER_TOKEN:
        return problems
    tokens = estimate_tokens(row)
    if tokens > options.max_tokens:
        problems.append(
            f"{format_name}: about {tokens} tokens, over the limit of {options.max_tokens}"
        )
    return problems


def check_messages(messages: Any) -> list[str]:
    """Problems of one chat conversation (a list of role/content messages)."""
    if not isinstance(messages, list) or not messages:
        return ["messages: no conversation"]
    if not all(isinstance(message, dict) for message in messages):
        return ["messages: every message must be an object"]
    problems: list[str] = []
    pending: list[dict[str, Any]] = []  # tool calls of the last assistant message not yet answered
    previous: str | None = None  # the role before, system and developer messages not counted
    for index, message in enumerate(messages):
        role = message.get("role")
        where = f"messages[{index}] ({role})"
        problems += _empty_turn(where, message)
        problems += _role_order(where, index, role, previous)
        if role not in ("system", "developer"):
            previous = str(role)
        if role == "tool":
            problems += _answer(where, message, pending)
            continue
        if pending:
            problems += [
                f"{where}: tool call {_call_id(call)} was never answered" for call in pending
            ]
        pending = list(message.get("tool_calls") or []) if role == "assistant" else []
    problems += [f"messages: tool call {_call_id(call)} was never answered" for call in pending]
    if not any(message.get("role") == "assistant" for message in messages):
        problems.append("messages: no assistant turn to learn from")
    elif messages[-1].get("role") == "user":
        problems.append("messages: the conversation ends with an unanswered user turn")
    return problems


def _role_order(where: str, index: int, role: Any, previous: str | None) -> list[str]:
    if role not in ROLES:
        return [f"{where}: unknown role"]
    if role in ("system", "developer"):
        return [] if index == 0 else [f"{where}: a system message may only come first"]
    if role == "user" and previous not in (None, "assistant", "tool"):
        return [f"{where}: a user turn follows {previous}"]
    if role == "assistant" and previous is None:
        return [f"{where}: the conversation must start with the user"]
    if role == "tool" and previous not in ("assistant", "tool"):
        return [f"{where}: a tool result must follow the assistant's tool call"]
    return []


def _answer(where: str, message: dict[str, Any], pending: list[dict[str, Any]]) -> list[str]:
    """Tick off the call a tool message answers: by `tool_call_id` (OpenAI), or, for the TRL
    shape that names the tool instead, the next call still open."""
    call_id = message.get("tool_call_id")
    for position, call in enumerate(pending):
        if (call_id and _call_id(call) == call_id) or (not call_id and position == 0):
            del pending[position]
            return []
    answered = f"call {call_id}" if call_id else "a call"
    return [f"{where}: answers {answered} the assistant did not make (or answered twice)"]


def _call_id(call: Any) -> str:
    return str(call.get("id", "?")) if isinstance(call, dict) else "?"


def _empty_turn(where: str, message: dict[str, Any]) -> list[str]:
    role = message.get("role")
    if role == "tool":
        return []
    if _has_text(message.get("content")) or (role == "assistant" and message.get("tool_calls")):
        return []
    return [f"{where}: empty turn"]


def _has_text(content: Any) -> bool:
    """Plain text, or a list of content parts one of which has text."""
    if isinstance(content, str):
        return bool(content.strip())
    if isinstance(content, list):
        return any(_has_text(part.get("text")) for part in content if isinstance(part, dict))
    return False


def estimate_tokens(row: Any) -> int:
    """About how many tokens `row` is: characters of its strings and numbers over four,
    rounded up (see the module docstring for why)."""
    return math.ceil(_chars(row) / CHARS_PER_TOKEN)


def _chars(value: Any) -> int:
    kind = type(value)
    if kind is str:
        return len(value)
    if kind is dict or kind is list:  # the common cases first, without a call per string
        total = 0
        for item in value.values() if kind is dict else value:
            total += len(item) if type(item) is str else _chars(item)
        return total
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(_chars(item) for item in value.values())
    if isinstance(value, list | tuple):
        return sum(_chars(item) for item in value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return len(str(value))
    return 0
