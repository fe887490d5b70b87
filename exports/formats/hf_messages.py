"""Hugging Face conversational data with tools, as TRL's SFTTrainer takes it (`messages`).

    {"messages": [{"role": "user", "content": "Fix the tests"},
                  {"role": "assistant", "content": "", "tool_calls": [{"id": "toolu_1",
                   "type": "function", "function": {"name": "Bash",
                   "arguments": {"command": "pytest"}}}]},
                  {"role": "tool", "name": "Bash", "tool_call_id": "toolu_1",
                   "content": "1 passed"},
                  {"role": "assistant", "content": "All tests pass."}],
     "tools": [{"type": "function", "function": {"name": "Bash", "description": ...,
                "parameters": {...}}}]}

TRL's "conversational language modeling" type with tool calling
(huggingface.co/docs/trl/dataset_formats): arguments are objects, not JSON strings; tool turns
name their tool; the `tools` column holds the JSON schemas chat templates render. The same
mapping as `jsonl` (one assistant turn per step, whole tool outputs, "Error: " before a failed
call's output, user text mid-session as a user turn), without OpenAI's `weight`: TRL has no
per-turn weight, so steps marked bad stay in (use `jsonl` or `stepwise` to act on the marks).
An assistant turn with only tool calls has content "" (chat templates read `content`).

Thinking: with `include_thinking`, assistant turns carry `reasoning_content` — the key chat
templates of reasoning models (Qwen3, DeepSeek-R1 and others) read; not part of TRL's schema.

Arguments with keys that vary between calls make Arrow's schema inference pad every call with
the other calls' keys (`None`): read the file with `load_dataset("json", ...)`, which keeps them
as written, or pass `on_mixed_types="use_json"` to `Dataset.from_list`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import jsonschema

from exports.formats.base import Format
from exports.formats.openai_chat import chat_messages, openai_tools
from exports.options import ExportOptions
from exports.records import Record

_TEXT = {"type": "string"}
_CALL = {
    "type": "object",
    "required": ["type", "function"],
    "properties": {
        "id": _TEXT,
        "type": {"const": "function"},
        "function": {
            "type": "object",
            "required": ["name", "arguments"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "arguments": {"type": "object"},
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}
_MESSAGE = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"enum": ["system", "user", "assistant", "tool"]},
        "content": _TEXT,
        "tool_calls": {"type": "array", "items": _CALL, "minItems": 1},
        "name": _TEXT,
        "tool_call_id": _TEXT,
        "reasoning_content": _TEXT,
    },
    "additionalProperties": False,
    "allOf": [
        {
            "if": {"properties": {"role": {"const": "tool"}}},
            "then": {"required": ["content", "name"]},
        },
        {
            "if": {"properties": {"role": {"enum": ["system", "user"]}}},
            "then": {"required": ["content"], "not": {"required": ["tool_calls"]}},
        },
        {
            "if": {"properties": {"role": {"const": "assistant"}}},
            "then": {"anyOf": [{"required": ["content"]}, {"required": ["tool_calls"]}]},
        },
    ],
}
_TOOL = {
    "type": "object",
    "required": ["type", "function"],
    "properties": {
        "type": {"const": "function"},
        "function": {
            "type": "object",
            "required": ["name", "parameters"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "description": _TEXT,
                "parameters": {
                    "type": "object",
                    "required": ["type", "properties"],
                    "properties": {"type": {"const": "object"}, "properties": {"type": "object"}},
                },
            },
        },
    },
}
# TRL's "conversational language modeling" type with tool calling, as a JSON schema.
TRL_CONVERSATIONAL_WITH_TOOLS = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["messages", "tools"],
    "properties": {
        "messages": {"type": "array", "items": _MESSAGE, "minItems": 2},
        "tools": {"type": "array", "items": _TOOL},
    },
    "additionalProperties": False,
}
_VALIDATOR = jsonschema.Draft202012Validator(TRL_CONVERSATIONAL_WITH_TOOLS)


class HFMessagesFormat(Format):
    name = "messages"
    title = "Hugging Face / TRL conversational with tools (JSONL)"
    filename = "data.jsonl"

    def rows(
        self,
        records: Iterable[Record],
        options: ExportOptions,
        left_out: Counter[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        for record in records:
            messages = chat_messages(record, options, arguments_as_text=False)
            yield {
                "messages": [_hf(message) for message in messages],
                "tools": openai_tools(record),
            }

    def validate(self, row: dict[str, Any]) -> list[str]:
        problems = [_say(error) for error in _VALIDATOR.iter_errors(row)]
        return problems or _conversation(row["messages"], row["tools"])


def _hf(message: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's shape to TRL's: no weight; an assistant's null content is ""."""
    message = {k: v for k, v in message.items() if k != "weight"}
    if message["role"] == "assistant" and message.get("content") is None:
        message["content"] = ""
    return message


def _say(error: jsonschema.ValidationError) -> str:
    where = "/".join(str(part) for part in error.absolute_path) or "row"
    return f"{where}: {error.message}"


def _conversation(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[str]:
    """What a schema can't say: the order of turns and tool calls answered by name."""
    names = {tool["function"]["name"] for tool in tools}
    problems: list[str] = []
    waiting: list[str] = []
    body = messages[1:] if messages[0]["role"] == "system" else messages
    if not body or body[0]["role"] != "user":
        return ["the conversation must start with a user turn"]
    for n, message in enumerate(body):
        role = message["role"]
        if role == "system":
            problems.append(f"messages[{n}]: a system turn after the start")
        if role == "tool":
            if message["name"] not in waiting:
                problems.append(f"messages[{n}]: tool turn for {message['name']!r} answers no call")
            else:
                waiting.remove(message["name"])
            continue
        if waiting:
            problems.append(f"messages[{n}]: calls to {', '.join(waiting)} are not answered")
            waiting = []
        for call in message.get("tool_calls", []):
            name = call["function"]["name"]
            if name not in names:
                problems.append(f"messages[{n}] calls {name!r}, which is not in tools")
            waiting.append(name)
    if waiting:
        problems.append(f"calls to {', '.join(waiting)} are not answered")
    if not any(message["role"] == "assistant" for message in body):
        problems.append("no assistant turn to train on")
    elif body[-1]["role"] not in ("assistant", "tool"):  # cut off mid-turn: ends on a tool
        problems.append("the conversation ends with a user turn")
    return problems
