"""OpenAI chat fine-tuning JSONL with tools (`jsonl`).

    {"messages": [{"role": "system", ...}, {"role": "user", "content": "Fix the tests"},
                  {"role": "assistant", "content": null, "weight": 1, "tool_calls": [{"id":
                   "toolu_1", "type": "function", "function": {"name": "Bash", "arguments":
                   "{\\"command\\":\\"pytest\\"}"}}]},
                  {"role": "tool", "tool_call_id": "toolu_1", "content": "1 passed"},
                  {"role": "assistant", "content": "All tests pass.", "weight": 1}],
     "tools": [{"type": "function", "function": {"name": "Bash", "description": ...,
                "parameters": {...JSON schema...}}}]}

Mapping from our records: one assistant message per step (a response's tool calls together,
ids kept), each tool output its own `tool` message in call order, whole. A step a reviewer
marked bad trains with `weight: 0`, the others with `weight: 1`. OpenAI has no error flag on
tool messages: a failed call's output starts with "Error: ". User text later in the session
becomes a user message before the step it prompted. Consecutive assistant messages without
tool calls between them (a response with no text or calls is dropped) are merged, so the
roles alternate as the fine-tuning API expects.

Thinking: with `include_thinking`, an assistant message carries its thinking in
`reasoning_content` — NOT part of OpenAI's format (its API may reject the key); it is the
field DeepSeek-style reasoning data and several open trainers read. Without it, thinking is
left out.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from exports.formats.base import Format, json_text
from exports.options import ExportOptions
from exports.records import Record, Step, ToolCallRecord

ROLES = ("system", "developer", "user", "assistant", "tool")
# OpenAI function names: letters, digits, underscores and dashes, at most 64.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ERROR_PREFIX = "Error: "
MESSAGE_KEYS = {
    "system": {"role", "content", "name"},
    "developer": {"role", "content", "name"},
    "user": {"role", "content", "name"},
    "assistant": {"role", "content", "name", "tool_calls", "weight", "reasoning_content"},
    "tool": {"role", "content", "tool_call_id"},
}


class OpenAIChatFormat(Format):
    name = "jsonl"
    title = "OpenAI chat fine-tuning (JSONL, with tools)"
    filename = "data.jsonl"

    def rows(
        self,
        records: Iterable[Record],
        options: ExportOptions,
        left_out: Counter[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        for record in records:
            yield {"messages": chat_messages(record, options), "tools": openai_tools(record)}

    def validate(self, row: dict[str, Any]) -> list[str]:
        return validate_openai_row(row)


# --- building ------------------------------------------------------------------------------


def openai_tools(record: Record) -> list[dict[str, Any]]:
    return [{"type": "function", "function": tool} for tool in record.tools]


def tool_output(call: ToolCallRecord) -> str:
    """The tool message's content: the whole output, "Error: " first when the call failed."""
    if call.is_error and not call.output.startswith(ERROR_PREFIX.strip()):
        return ERROR_PREFIX + call.output
    return call.output


def chat_messages(
    record: Record, options: ExportOptions, *, arguments_as_text: bool = True
) -> list[dict[str, Any]]:
    """The record as chat messages (OpenAI's shape; `arguments_as_text=False` gives Hugging
    Face's, with arguments as objects and tool messages naming their tool)."""
    messages: list[dict[str, Any]] = []
    if record.system:
        messages.append({"role": "system", "content": record.system})
    messages.append({"role": "user", "content": record.prompt})
    for step in record.steps:
        if step.user_text:
            messages.append({"role": "user", "content": step.user_text})
        assistant = _assistant(step, options, arguments_as_text)
        if assistant is None:
            continue
        _append_assistant(messages, assistant)
        messages.extend(_tool_messages(step, arguments_as_text))
    return messages


def _assistant(step: Step, options: ExportOptions, as_text: bool) -> dict[str, Any] | None:
    thinking = step.thinking if options.include_thinking else ""
    if not (step.text or step.tool_calls or thinking):
        return None  # an empty response: nothing to train on
    message: dict[str, Any] = {"role": "assistant", "content": step.text or None}
    if step.tool_calls:
        message["tool_calls"] = [_call(call, as_text) for call in step.tool_calls]
    if thinking:
        message["reasoning_content"] = thinking
    message["weight"] = 0 if step.bad else 1
    return message


def _call(call: ToolCallRecord, as_text: bool) -> dict[str, Any]:
    arguments: Any = json_text(call.arguments) if as_text else call.arguments
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": arguments},
    }


def _append_assistant(messages: list[dict[str, Any]], message: dict[str, Any]) -> None:
    """Add the message, merged into the one before when that is an assistant message without
    tool calls (two responses in a row: the roles must alternate)."""
    last = messages[-1]
    if last["role"] != "assistant" or last.get("tool_calls"):
        messages.append(message)
        return
    text = "\n\n".join(part for part in (last["content"], message["content"]) if part)
    last["content"] = text or None
    for key in ("tool_calls", "reasoning_content"):
        if key in message:
            joined = last.get(key)
            last[key] = message[key] if joined is None else _joined(joined, message[key])
    last["weight"] = min(last["weight"], message["weight"])


def _joined(before: Any, more: Any) -> Any:
    return before + more if isinstance(before, list) else f"{before}\n\n{more}"


def _tool_messages(step: Step, as_text: bool) -> list[dict[str, Any]]:
    answered = [call for call in step.tool_calls if call.answered]
    if as_text:
        return [
            {"role": "tool", "tool_call_id": call.id, "content": tool_output(call)}
            for call in answered
        ]
    return [
        {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": tool_output(call)}
        for call in answered
    ]


# --- validating ----------------------------------------------------------------------------


def validate_openai_row(row: dict[str, Any]) -> list[str]:
    """What OpenAI's fine-tuning format with tools would reject in `row`."""
    unknown = set(row) - {"messages", "tools", "parallel_tool_calls"}
    problems = [f"unknown top-level key {key!r}" for key in sorted(unknown)]
    tools, tool_problems = _tool_names(row.get("tools", []))
    problems += tool_problems
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        return [*problems, "messages must be a non-empty list"]
    problems += _check_messages(messages, tools)
    return problems


def _tool_names(tools: Any) -> tuple[set[str], list[str]]:
    if not isinstance(tools, list):
        return set(), ["tools must be a list"]
    names: set[str] = set()
    problems: list[str] = []
    for n, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or tool.get("type") != "function":
            problems.append(f"tools[{n}] is not a function tool")
            continue
        name = function.get("name")
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            problems.append(f"tools[{n}] has an invalid name {name!r}")
        elif name in names:
            problems.append(f"tool {name!r} is declared twice")
        parameters = function.get("parameters", {"type": "object"})
        if not isinstance(parameters, dict) or parameters.get("type") != "object":
            problems.append(f"tool {name!r}: parameters must be an object schema")
        names.add(str(name))
    return names, problems


def _check_messages(messages: list[Any], tools: set[str]) -> list[str]:
    checker = _Conversation(tools)
    for n, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            checker.problems.append(f"messages[{n}] has no known role")
            continue
        checker.check(n, message)
    checker.finish(messages)
    return checker.problems


class _Conversation:
    """Walks the messages once, tracking which tool calls still wait for their answer."""

    def __init__(self, tools: set[str]) -> None:
        self.tools = tools
        self.waiting: list[str] = []
        self.problems: list[str] = []
        self.seen_other = False  # anything but a system message so far

    def check(self, n: int, message: dict[str, Any]) -> None:
        role = message["role"]
        allowed = MESSAGE_KEYS[role]
        if not message.keys() <= allowed:
            extra = sorted(set(message) - allowed)
            self.problems += [f"messages[{n}] ({role}) has unknown key {k!r}" for k in extra]
        if role in ("system", "developer"):
            if self.seen_other:
                self.problems.append(
                    f"messages[{n}]: a {role} message after the conversation began"
                )
            self._text(n, message, required=True)
            return
        if not self.seen_other and role != "user":
            self.problems.append(f"messages[{n}]: the conversation must start with a user message")
        self.seen_other = True
        if role == "tool":
            self._tool(n, message)
            return
        self._unanswered(n)
        if role == "user":
            self._text(n, message, required=True)
        else:
            self._assistant(n, message)

    def finish(self, messages: list[Any]) -> None:
        self._unanswered(len(messages))
        roles = [m.get("role") for m in messages if isinstance(m, dict)]
        if "assistant" not in roles:
            self.problems.append("no assistant message to train on")
        elif roles[-1] not in ("assistant", "tool"):  # a session cut off mid-turn ends on a tool
            self.problems.append("the conversation ends with a user message")

    def _unanswered(self, n: int) -> None:
        for call_id in self.waiting:
            self.problems.append(f"tool call {call_id} is not answered before messages[{n}]")
        self.waiting = []

    def _text(self, n: int, message: dict[str, Any], *, required: bool) -> None:
        content = message.get("content")
        if required and (not isinstance(content, str) or not content.strip()):
            self.problems.append(f"messages[{n}] ({message['role']}) has no text")

    def _tool(self, n: int, message: dict[str, Any]) -> None:
        call_id = message.get("tool_call_id")
        if call_id not in self.waiting:
            self.problems.append(f"messages[{n}]: tool result {call_id!r} answers no pending call")
        else:
            self.waiting.remove(call_id)
        if not isinstance(message.get("content"), str):
            self.problems.append(f"messages[{n}] (tool) content must be a string")

    def _assistant(self, n: int, message: dict[str, Any]) -> None:
        calls = message.get("tool_calls")
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            self.problems.append(f"messages[{n}] (assistant) content must be a string or null")
        if not calls and not (isinstance(content, str) and content.strip()):
            self.problems.append(f"messages[{n}] (assistant) has neither text nor tool calls")
        if message.get("weight", 1) not in (0, 1):
            self.problems.append(f"messages[{n}] weight must be 0 or 1")
        if calls is not None:
            self._calls(n, calls)

    def _calls(self, n: int, calls: Any) -> None:
        if not isinstance(calls, list) or not calls:
            self.problems.append(f"messages[{n}] tool_calls must be a non-empty list")
            return
        for k, call in enumerate(calls):
            where = f"messages[{n}].tool_calls[{k}]"
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict) or call.get("type") != "function":
                self.problems.append(f"{where} is not a function call")
                continue
            if not isinstance(call.get("id"), str) or not call["id"]:
                self.problems.append(f"{where} has no id")
            elif call["id"] in self.waiting:
                self.problems.append(f"{where} repeats the id {call['id']}")
            else:
                self.waiting.append(call["id"])
            if function.get("name") not in self.tools:
                self.problems.append(f"{where} calls {function.get('name')!r}, not in tools")
            self.problems += _arguments(where, function.get("arguments"))


def _arguments(where: str, arguments: Any) -> list[str]:
    if not isinstance(arguments, str):
        return [f"{where} arguments must be a JSON string"]
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return [f"{where} arguments are not valid JSON"]
    return [] if isinstance(parsed, dict) else [f"{where} arguments must be a JSON object"]
