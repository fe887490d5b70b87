"""The Agent Data Protocol's standardized trajectory (neulab/agent-data-protocol), so that its
converters turn our sessions into OpenHands, SWE-agent or AgentLab training data.

    fmt = FORMATS["adp"]
    fmt.write(fmt.rows(records, options), Path("out"))  # out/full_std.jsonl, out/metadata.json

The output is an ADP dataset folder as its scripts read one (`datasets/<name>/full_std.jsonl`
plus `metadata.json` declaring the dataset's custom tools and code languages). The schema is
mirrored below from upstream's Pydantic models (`schema/trajectory.py`, `schema/action/*.py`,
`schema/observation/*.py`, `schema/dataset_metadata.py`, schema version 1.5.0) and every row is
validated against it, including its rule that each tool action and its observation share a
`tool_call_id`.

How a record becomes a trajectory (`content`, actions and observations in order):
- the prompt, and user text later in the session -> `text_observation` with source "user";
- a tool call -> an action immediately followed by its observation (`text_observation`,
  source "environment", the same `tool_call_id`): a Bash call is a `code_action` in "bash"
  (its `command`; the CLI's optional timeout/description arguments have no place there), any
  other tool an `api_action` (`function` = the tool, `kwargs` = its arguments, declared in
  `metadata.json`). Tool outputs are kept whole: never cut, never ended with "..." (upstream
  rejected a dataset for that);
- the response's text is the `description` (the thought) of its first action, or a
  `message_action` when it called no tool; thinking, with include_thinking, is that first
  item's `reasoning_content`;
- the system prompt, the task, the verdict, review marks and failed calls go in `details`
  (upstream's place for what is not trained on).
A call the session never answered (it was killed) is an action without `tool_call_id`, as the
schema wants for actions without an observation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from exports.formats.base import Format, dumps, write_jsonl
from exports.options import ExportOptions
from exports.records import Record, Step, ToolCallRecord

SCHEMA_VERSION = "1.5.0"
SUPPORTED_SCHEMA_VERSIONS = ("1.5.0", "1.4.0", "1.3.0", "1.2.0", "1.1.0", "1.0.0")
# Tools whose calls are code in a language rather than API calls.
CODE_TOOLS = {"Bash": ("bash", "command")}


# --- upstream's models, mirrored (neulab/agent-data-protocol schema/) -----------------------
# `class_` is a Literal here (upstream: a str with that default) so that a row can only parse
# as the item it says it is. CodeAction.language lists the few languages we could write;
# upstream's list is longer, so accepting less is safe.

_FORBID = ConfigDict(extra="forbid")


class ApiAction(BaseModel):
    model_config = _FORBID
    class_: Literal["api_action"] = "api_action"
    function: str
    kwargs: dict[str, Any]
    description: str | None = None
    reasoning_content: str | None = None
    reward: float | None = None
    tool_call_id: str | None = None


class CodeAction(BaseModel):
    model_config = _FORBID
    class_: Literal["code_action"] = "code_action"
    language: Literal["bash", "shell", "sh", "python", "python3"]
    content: str
    description: str | None = Field(...)
    reasoning_content: str | None = None
    reward: float | None = None
    tool_call_id: str | None = None


class MessageAction(BaseModel):
    model_config = _FORBID
    class_: Literal["message_action"] = "message_action"
    content: str
    description: str | None = None
    reasoning_content: str | None = None
    reward: float | None = None


class TextObservation(BaseModel):
    model_config = _FORBID
    class_: Literal["text_observation"] = "text_observation"
    content: str
    name: str | None = None
    source: Literal["user", "agent", "environment"]
    tool_call_id: str | None = None
    reward: float | None = None


Item = ApiAction | CodeAction | MessageAction | TextObservation


class Trajectory(BaseModel):
    model_config = _FORBID
    schema_version: str = SCHEMA_VERSION
    id: str
    content: list[Item]
    available_custom_tools: list[str] | None = None
    available_code_languages: list[str] | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    @field_validator("schema_version")
    @classmethod
    def _supported(cls, value: str) -> str:
        if value not in SUPPORTED_SCHEMA_VERSIONS:
            raise ValueError(f"unsupported schema_version {value!r}")
        return value

    @model_validator(mode="after")
    def _tool_call_links(self) -> Trajectory:
        """Upstream's rule: a tool action followed by an observation names a tool_call_id;
        each observation's id matches one earlier action; each action's id is answered once."""
        actions: set[str] = set()
        answered: set[str] = set()
        for index, item in enumerate(self.content):
            following = self.content[index + 1] if index + 1 < len(self.content) else None
            if isinstance(item, ApiAction | CodeAction):
                if item.tool_call_id is None:
                    if isinstance(following, TextObservation):
                        raise ValueError(f"content[{index}]: action before a result has no id")
                    continue
                if item.tool_call_id in actions:
                    raise ValueError(f"content[{index}]: tool_call_id used twice")
                actions.add(item.tool_call_id)
            elif isinstance(item, TextObservation) and item.tool_call_id is not None:
                if item.tool_call_id not in actions or item.tool_call_id in answered:
                    raise ValueError(f"content[{index}]: result without its own earlier action")
                answered.add(item.tool_call_id)
        if actions - answered:
            raise ValueError(f"actions never answered: {sorted(actions - answered)}")
        return self

    @model_validator(mode="after")
    def _code_languages(self) -> Trajectory:
        used = {item.language for item in self.content if isinstance(item, CodeAction)}
        if self.available_code_languages is not None and set(self.available_code_languages) != used:
            raise ValueError("available_code_languages must be exactly the languages used")
        return self


class FunctionSpec(BaseModel):
    model_config = _FORBID
    name: str
    description: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)


class ToolSpec(BaseModel):
    model_config = _FORBID
    type: Literal["function"] = "function"
    function: FunctionSpec


class DatasetMetadata(BaseModel):
    """`metadata.json` of an ADP dataset (upstream `schema/dataset_metadata.py`)."""

    model_config = _FORBID
    custom_tools: list[ToolSpec] = Field(default_factory=list)
    code_enabled: list[str] = Field(default_factory=list)
    browser_enabled: bool = False


# --- the format ------------------------------------------------------------------------------


class AdpFormat(Format):
    name = "adp"
    title = "Agent Data Protocol (standardized)"
    filename = "full_std.jsonl"
    size_limited = False

    def rows(
        self,
        records: Iterable[Record],
        options: ExportOptions,
        left_out: Counter[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        for record in records:
            yield _trajectory(record)

    def validate(self, row: dict[str, Any]) -> list[str]:
        try:
            trajectory = Trajectory.model_validate(row)
        except ValidationError as error:
            return [_problem(e) for e in error.errors()]
        return _undeclared(trajectory, row)

    def write(self, rows: Iterable[dict[str, Any]], directory: Path) -> list[Path]:
        """`full_std.jsonl`, then `metadata.json` declaring every tool the rows used."""
        metadata = _MetadataCollector()
        data = Path(directory) / self.filename
        write_jsonl(metadata.watch(rows), data)
        meta = Path(directory) / "metadata.json"
        meta.write_bytes(dumps(metadata.result()) + b"\n")
        return [data, meta]


class _MetadataCollector:
    """Collects, as rows stream past, the tool schemas and languages `metadata.json` lists."""

    def __init__(self) -> None:
        self.tools: dict[str, dict[str, Any]] = {}
        self.languages: set[str] = set()

    def watch(self, rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in rows:
            used = {i["function"] for i in row["content"] if i["class_"] == "api_action"}
            for tool in row["details"].get("tools", []):
                if tool["name"] in used:
                    self.tools.setdefault(tool["name"], tool)
            self.languages.update(row.get("available_code_languages") or [])
            yield row

    def result(self) -> dict[str, Any]:
        tools = [{"type": "function", "function": self.tools[n]} for n in sorted(self.tools)]
        metadata = {"custom_tools": tools, "code_enabled": sorted(self.languages)}
        return DatasetMetadata.model_validate(metadata | {"browser_enabled": False}).model_dump()


# --- building --------------------------------------------------------------------------------


def _trajectory(record: Record) -> dict[str, Any]:
    content: list[dict[str, Any]] = [_observation(record.prompt, "user")]
    for step in record.steps:
        if step.user_text:
            content.append(_observation(step.user_text, "user"))
        content += _step_items(step)
    trajectory: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "id": record.id,
        "content": content,
        "details": _details(record, content),
    }
    languages = sorted({i["language"] for i in content if i["class_"] == "code_action"})
    if languages:
        trajectory["available_code_languages"] = languages
    return trajectory


def _step_items(step: Step) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for call in step.tool_calls:
        items.append(_action(call))
        if call.answered:
            items.append(_observation(call.output, "environment", call.id))
    if not step.tool_calls and (step.text or step.thinking):
        items.append({"class_": "message_action", "content": step.text, "description": None})
    if items:
        first = items[0]
        if step.tool_calls:
            first["description"] = step.text or None
        if step.thinking:
            first["reasoning_content"] = step.thinking
    return items


def _action(call: ToolCallRecord) -> dict[str, Any]:
    ids = {"tool_call_id": call.id} if call.answered else {}
    code = CODE_TOOLS.get(call.name)
    if code and isinstance(call.arguments.get(code[1]), str):
        language, argument = code
        action = {"class_": "code_action", "language": language, "description": None}
        return action | {"content": call.arguments[argument]} | ids
    return {"class_": "api_action", "function": call.name, "kwargs": call.arguments} | ids


def _observation(text: str, source: str, call_id: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"class_": "text_observation", "content": text, "source": source}
    if call_id is not None:
        item["tool_call_id"] = call_id
    return item


def _details(record: Record, content: list[dict[str, Any]]) -> dict[str, Any]:
    calls = [call for step in record.steps for call in step.tool_calls]
    return {
        "example_id": record.example_id,
        "execution_id": record.execution_id,
        "parent_id": record.parent_id,
        "spawned_by": record.spawned_by,
        "task": asdict(record.task),
        "system": record.system,
        "success": record.success,
        "quality": record.quality,
        "golden": record.golden,
        "validated": record.validated,
        "tags": record.tags,
        "model": record.model,
        "source": record.source,
        "cost_usd": record.cost_usd,
        "tools": record.tools,
        "failed_tool_calls": [call.id for call in calls if call.is_error],
        "bad_steps": [
            {"message_ids": step.message_ids, "comment": step.comment}
            for step in record.steps
            if step.bad
        ],
    }


# --- checks ----------------------------------------------------------------------------------


def _problem(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


def _undeclared(trajectory: Trajectory, row: dict[str, Any]) -> list[str]:
    """Upstream's converters refuse an api_action whose function metadata.json doesn't
    declare; ours is built from `details.tools`, so each function must be there."""
    declared = {tool.get("name") for tool in row.get("details", {}).get("tools", [])}
    used = {item.function for item in trajectory.content if isinstance(item, ApiAction)}
    return [f"api_action {name!r} has no schema in details.tools" for name in used - declared]
