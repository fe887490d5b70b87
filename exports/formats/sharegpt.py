"""ShareGPT as LLaMA-Factory reads it (`conversations`), with the `dataset_info.json` entry.

    [{"conversations": [{"from": "human", "value": "Fix the tests"},
                        {"from": "function_call", "value":
                         "{\\"arguments\\":{\\"command\\":\\"pytest\\"},\\"name\\":\\"Bash\\"}"},
                        {"from": "observation", "value": "1 passed"},
                        {"from": "gpt", "value": "All tests pass."}],
      "system": "", "tools": "[{\\"description\\": ..., \\"name\\": \\"Bash\\", ...}]"}]

LLaMA-Factory's rule (`SharegptDatasetConverter`): human / observation turns at odd positions
(1st, 3rd, ...), gpt / function_call at even ones, an even number of turns in all; otherwise it
skips the example. How a trajectory fits:
- the prompt is the first human turn; user text later in the session is a human turn (after an
  observation it joins that observation's value: two odd turns can't follow each other);
- a step with tool calls is one function_call turn: `{"name", "arguments"}` as JSON, a JSON
  list of them for parallel calls (what LLaMA-Factory's FunctionFormatter parses); the text a
  step says beside its calls has no place in that turn and is left out;
- the outputs of a step's calls are one observation turn, whole, "Error: " before a failed
  call's output; several outputs are joined with "\\n</tool_response>\\n<tool_response>\\n", as
  LLaMA-Factory's own OpenAI converter joins parallel tool responses;
- a step with text only is a gpt turn; consecutive gpt turns are merged;
- a session cut off after a tool's output (nothing after it to learn) ends on the call: the
  last observation is dropped, as the even-count rule requires;
- `tools` is a JSON string of [{name, description, parameters}]; `system` the system prompt.
Thinking is never exported here (no field for it); ShareGPT has no per-turn weight, so steps
marked bad stay in. A record whose turns still break the rule (a call never answered) is left
out by `validate`.

Beside the data, `dataset_info.json` registers it: put both in LLaMA-Factory's `data/` folder
and train with `dataset: trainingdash_conversations`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from exports.formats.base import Format, json_text, write_json_array
from exports.formats.openai_chat import tool_output
from exports.options import ExportOptions
from exports.records import Record, Step

ODD = ("human", "observation")
EVEN = ("gpt", "function_call")
RESPONSE_JOIN = "\n</tool_response>\n<tool_response>\n"
DATASET_NAME = "trainingdash_conversations"


class ShareGPTFormat(Format):
    name = "conversations"
    title = "ShareGPT for LLaMA-Factory (JSON)"
    filename = "data.json"

    def rows(
        self,
        records: Iterable[Record],
        options: ExportOptions,
        left_out: Counter[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        for record in records:
            tools = [dict(sorted(tool.items())) for tool in record.tools]
            yield {
                "conversations": conversations(record),
                "system": record.system,
                "tools": json_text(tools),
            }

    def validate(self, row: dict[str, Any]) -> list[str]:
        return validate_sharegpt_row(row)

    def write(self, rows: Iterable[dict[str, Any]], directory: Path) -> list[Path]:
        data = Path(directory) / self.filename
        write_json_array(rows, data)
        info = Path(directory) / "dataset_info.json"
        info.write_bytes(orjson.dumps(dataset_info(self.filename), option=orjson.OPT_INDENT_2))
        return [data, info]


def dataset_info(file_name: str) -> dict[str, Any]:
    """LLaMA-Factory's registration of the data file (default ShareGPT tags, spelled out)."""
    return {
        DATASET_NAME: {
            "file_name": file_name,
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "system": "system", "tools": "tools"},
            "tags": {
                "role_tag": "from",
                "content_tag": "value",
                "user_tag": "human",
                "assistant_tag": "gpt",
                "observation_tag": "observation",
                "function_tag": "function_call",
            },
        }
    }


# --- building ------------------------------------------------------------------------------


def conversations(record: Record) -> list[dict[str, str]]:
    turns: list[dict[str, str]] = []
    _add(turns, "human", record.prompt)
    for step in record.steps:
        if step.user_text:
            _add(turns, "human", step.user_text)
        _add_step(turns, step)
    if len(turns) > 1 and turns[-1]["from"] == "observation":
        turns.pop()  # a session cut off after a tool's output ends on its call
    return turns


def _add_step(turns: list[dict[str, str]], step: Step) -> None:
    if step.tool_calls:
        calls = [{"name": c.name, "arguments": c.arguments} for c in step.tool_calls]
        _add(turns, "function_call", json_text(calls[0] if len(calls) == 1 else calls))
        outputs = [tool_output(call) for call in step.tool_calls if call.answered]
        if outputs:
            _add(turns, "observation", RESPONSE_JOIN.join(outputs))
    elif step.text:
        _add(turns, "gpt", step.text)


def _add(turns: list[dict[str, str]], role: str, value: str) -> None:
    """Append a turn where the position rule allows it, else merge it into the last one."""
    expected = ODD if len(turns) % 2 == 0 else EVEN
    last = turns[-1] if turns else None
    if role in expected or last is None:
        turns.append({"from": role, "value": value})
    elif (role in ODD and last["from"] in ODD) or (role == "gpt" and last["from"] == "gpt"):
        # user text right after a tool's output; two responses with text in a row
        last["value"] = f"{last['value']}\n\n{value}"
    elif role == "function_call" and last["from"] == "gpt":
        turns[-1] = {"from": role, "value": value}  # the earlier text has no slot of its own
    else:  # a call never answered: leave the break for validate() to report
        turns.append({"from": role, "value": value})


# --- validating ----------------------------------------------------------------------------


def validate_sharegpt_row(row: dict[str, Any]) -> list[str]:
    """What LLaMA-Factory would skip or fail on in `row` (sharegpt, default tags)."""
    problems = [
        f"unknown key {k!r}" for k in sorted(set(row) - {"conversations", "system", "tools"})
    ]
    if not isinstance(row.get("system", ""), str):
        problems.append("system must be a string")
    names, tool_problems = _tools(row.get("tools", "[]"))
    turns = row.get("conversations")
    if not isinstance(turns, list) or not turns:
        return [*problems, *tool_problems, "conversations must be a non-empty list"]
    problems += tool_problems
    for n, turn in enumerate(turns):
        problems += _turn(n, turn, turns[n - 1] if n else None, names)
    if len(turns) % 2:
        problems.append("an odd number of turns (the last must be gpt or function_call)")
    return problems


def _tools(tools: Any) -> tuple[set[str], list[str]]:
    if not isinstance(tools, str):
        return set(), ["tools must be a JSON string"]
    try:
        parsed = orjson.loads(tools)
    except orjson.JSONDecodeError:
        return set(), ["tools is not valid JSON"]
    if not isinstance(parsed, list) or not all(isinstance(t, dict) for t in parsed):
        return set(), ["tools must be a JSON list of objects"]
    problems = [
        f"tools[{n}] needs name and parameters"
        for n, t in enumerate(parsed)
        if not (isinstance(t.get("name"), str) and isinstance(t.get("parameters"), dict))
    ]
    return {str(t.get("name")) for t in parsed}, problems


def _turn(n: int, turn: Any, before: Any, names: set[str]) -> list[str]:
    if not isinstance(turn, dict) or set(turn) != {"from", "value"}:
        return [f"turn {n + 1} must have exactly 'from' and 'value'"]
    role, value = turn["from"], turn["value"]
    allowed = ODD if n % 2 == 0 else EVEN
    problems = [] if role in allowed else [f"turn {n + 1} is {role!r}; expected one of {allowed}"]
    if not isinstance(value, str):
        return [*problems, f"turn {n + 1} value must be a string"]
    if role in ("human", "gpt") and not value.strip():
        problems.append(f"turn {n + 1} ({role}) is empty")
    if role == "observation" and (
        not isinstance(before, dict) or before.get("from") != "function_call"
    ):
        problems.append(f"turn {n + 1}: an observation must follow a function_call")
    if role == "function_call":
        problems += _function_call(n, value, names)
    return problems


def _function_call(n: int, value: str, names: set[str]) -> list[str]:
    try:
        calls = orjson.loads(value)
    except orjson.JSONDecodeError:
        return [f"turn {n + 1}: function_call value is not JSON"]
    calls = calls if isinstance(calls, list) else [calls]
    problems: list[str] = []
    for call in calls:
        if not isinstance(call, dict) or not isinstance(call.get("arguments"), dict):
            problems.append(f"turn {n + 1}: each call needs a name and an arguments object")
        elif call.get("name") not in names:
            problems.append(f"turn {n + 1}: calls {call.get('name')!r}, which is not in tools")
    return problems
