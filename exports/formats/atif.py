"""Harbor's Agent Trajectory Interchange Format (ATIF): one `trajectory.json` per session.

    fmt = FORMATS["atif"]
    fmt.write(fmt.rows(records, options), Path("out"))  # out/trajectories/ex-12/trajectory.json

The schema is Harbor's RFC 0001 and the Pydantic models its own validator uses (harbor 0.25.0,
`harbor/models/trajectories/*.py`, checked by `harbor.utils.trajectory_validator`). Harbor needs
Python >= 3.12 and we run 3.11, so those models are mirrored below field for field (with
`extra="forbid"` and the same validators) and every row is validated against them.

How a record becomes a trajectory:
- steps: the system prompt (source "system") when there is one, the user's prompt ("user"),
  then one "agent" step per assistant response: its text -> `message`, thinking (only with
  include_thinking) -> `reasoning_content`, tool calls -> `tool_calls`, their whole outputs ->
  `observation.results` (`source_call_id` = the call's id, `extra.is_error` on a failed call),
  API usage -> `metrics` (ATIF's `prompt_tokens` counts cached input too), `llm_call_count` 1;
  a reviewer's bad-step mark -> `extra.review`. User text later in the session is a "user"
  step of its own before the response that follows it.
- sub-agents: a sub-agent conversation is embedded in its spawner's `subagent_trajectories`
  (its `trajectory_id` = its record id), and the Task/Agent call's observation result points
  at it with `subagent_trajectory_ref` (ATIF's embedded form). So a session with sub-agents is
  still one file. With subagents="coordinator_only" there are none.
- final_metrics: the session's token totals and cost as its result stated them (which include
  its sub-agents', beyond its own steps'), or, where none were stated, its steps' sums; a
  sub-agent's totals are its steps' sums (it has no cost of its own); the number of steps.
- schema_version "ATIF-v1.7": every field we write exists in v1.7, which both Harbor and the
  Agent Data Protocol's ATIF importer (which accepts v1.7 only) read.

Memory: records arrive with a coordinator's sub-agents right after it, so `rows` holds one
session (the coordinator and its sub-agents) at a time.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from exports.formats.base import ExportError, Format
from exports.options import ExportOptions
from exports.records import USAGE_KEYS, Record, Step

SCHEMA_VERSION = "ATIF-v1.7"
AGENT_NAME = "claude-code"
# A record id becomes a folder name: nothing that could climb out of the export directory.
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


# --- Harbor's models, mirrored (harbor 0.25.0: harbor/models/trajectories/) ------------------
# Audio content parts (v1.8) are left out: we never write media, so accepting less is safe.

_FORBID = ConfigDict(extra="forbid")


class ImageSource(BaseModel):
    model_config = _FORBID
    media_type: Literal["image/jpeg", "image/png", "image/gif", "image/webp"]
    path: str


class ContentPart(BaseModel):
    model_config = _FORBID
    type: Literal["text", "image"]
    text: str | None = None
    source: ImageSource | None = None

    @model_validator(mode="after")
    def _shape(self) -> ContentPart:
        if self.type == "text" and (self.text is None or self.source is not None):
            raise ValueError("a text part has 'text' and no 'source'")
        if self.type == "image" and (self.source is None or self.text is not None):
            raise ValueError("an image part has 'source' and no 'text'")
        return self


class ToolCall(BaseModel):
    model_config = _FORBID
    tool_call_id: str
    function_name: str
    arguments: dict[str, Any]
    extra: dict[str, Any] | None = None


class SubagentTrajectoryRef(BaseModel):
    model_config = _FORBID
    trajectory_id: str | None = None
    session_id: str | None = None
    trajectory_path: str | None = None
    extra: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _resolvable(self) -> SubagentTrajectoryRef:
        if self.trajectory_id is None and self.trajectory_path is None:
            raise ValueError("a subagent ref sets trajectory_id or trajectory_path")
        return self


class ObservationResult(BaseModel):
    model_config = _FORBID
    source_call_id: str | None = None
    content: str | list[ContentPart] | None = None
    subagent_trajectory_ref: list[SubagentTrajectoryRef] | None = None
    extra: dict[str, Any] | None = None


class Observation(BaseModel):
    model_config = _FORBID
    results: list[ObservationResult]


class Metrics(BaseModel):
    model_config = _FORBID
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    cost_usd: float | None = None
    prompt_token_ids: list[int] | None = None
    completion_token_ids: list[int] | None = None
    logprobs: list[float] | None = None
    extra: dict[str, Any] | None = None


_AGENT_ONLY = ("model_name", "reasoning_effort", "reasoning_content", "tool_calls", "metrics")


class AtifStep(BaseModel):
    model_config = _FORBID
    step_id: int = Field(ge=1)
    timestamp: str | None = None
    source: Literal["system", "user", "agent"]
    model_name: str | None = None
    reasoning_effort: str | float | None = None
    message: str | list[ContentPart]
    reasoning_content: str | None = None
    tool_calls: list[ToolCall] | None = None
    observation: Observation | None = None
    metrics: Metrics | None = None
    is_copied_context: bool | None = None
    llm_call_count: int | None = Field(default=None, ge=0)
    extra: dict[str, Any] | None = None

    @field_validator("timestamp")
    @classmethod
    def _iso(cls, value: str | None) -> str | None:
        if value is not None:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        return value

    @model_validator(mode="after")
    def _agent_fields(self) -> AtifStep:
        if self.source != "agent":
            for name in _AGENT_ONLY:
                if getattr(self, name) is not None:
                    raise ValueError(f"'{name}' is only for agent steps")
        llm_only = (self.metrics, self.reasoning_content)
        if self.llm_call_count == 0 and any(value is not None for value in llm_only):
            raise ValueError("no metrics or reasoning_content when llm_call_count is 0")
        return self


class Agent(BaseModel):
    model_config = _FORBID
    name: str
    version: str
    model_name: str | None = None
    tool_definitions: list[dict[str, Any]] | None = None
    extra: dict[str, Any] | None = None


class FinalMetrics(BaseModel):
    model_config = _FORBID
    total_prompt_tokens: int | None = None
    total_completion_tokens: int | None = None
    total_cached_tokens: int | None = None
    total_cost_usd: float | None = None
    total_steps: int | None = Field(default=None, ge=0)
    extra: dict[str, Any] | None = None


class Trajectory(BaseModel):
    model_config = _FORBID
    schema_version: Literal[
        "ATIF-v1.0",
        "ATIF-v1.1",
        "ATIF-v1.2",
        "ATIF-v1.3",
        "ATIF-v1.4",
        "ATIF-v1.5",
        "ATIF-v1.6",
        "ATIF-v1.7",
        "ATIF-v1.8",
    ] = "ATIF-v1.8"
    session_id: str | None = None
    trajectory_id: str | None = None
    agent: Agent
    steps: list[AtifStep] = Field(min_length=1)
    notes: str | None = None
    final_metrics: FinalMetrics | None = None
    continued_trajectory_ref: str | None = None
    extra: dict[str, Any] | None = None
    subagent_trajectories: list[Trajectory] | None = None

    @model_validator(mode="after")
    def _step_ids(self) -> Trajectory:
        for index, step in enumerate(self.steps, 1):
            if step.step_id != index:
                raise ValueError(f"steps[{index - 1}].step_id is {step.step_id}, not {index}")
        return self

    @model_validator(mode="after")
    def _subagent_ids(self) -> Trajectory:
        seen: set[str] = set()
        for index, sub in enumerate(self.subagent_trajectories or []):
            if sub.trajectory_id is None or sub.trajectory_id in seen:
                raise ValueError(f"subagent_trajectories[{index}] needs a unique trajectory_id")
            seen.add(sub.trajectory_id)
        return self

    @model_validator(mode="after")
    def _call_references(self) -> Trajectory:
        for step in self.steps:
            ids = {call.tool_call_id for call in step.tool_calls or []}
            for result in step.observation.results if step.observation else []:
                if result.source_call_id is not None and result.source_call_id not in ids:
                    raise ValueError(
                        f"step {step.step_id}: source_call_id {result.source_call_id!r} "
                        "is not one of its tool_calls"
                    )
        return self


# --- the format ------------------------------------------------------------------------------


class AtifFormat(Format):
    name = "atif"
    title = "ATIF trajectories (Harbor)"
    filename = "trajectories"
    size_limited = False

    def rows(
        self,
        records: Iterable[Record],
        options: ExportOptions,
        left_out: Counter[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        session: _Session | None = None
        for record in records:
            if session is not None and session.adopt(record):
                continue
            if session is not None:
                yield session.root
            session = _Session(record)
        if session is not None:
            yield session.root

    def validate(self, row: dict[str, Any]) -> list[str]:
        try:
            Trajectory.model_validate(row)
        except ValidationError as error:
            return [_problem(e) for e in error.errors()]
        return _unresolved_refs(row)

    def write(self, rows: Iterable[dict[str, Any]], directory: Path) -> list[Path]:
        """One `trajectories/<id>/trajectory.json` per session, indented like Harbor's own."""
        files: list[Path] = []
        for row in rows:
            trajectory_id = str(row.get("trajectory_id") or "")
            if not SAFE_ID.match(trajectory_id):
                raise ExportError(f"unsafe trajectory id {trajectory_id!r}")
            path = Path(directory) / self.filename / trajectory_id / "trajectory.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            option = orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2
            path.write_bytes(orjson.dumps(row, option=option) + b"\n")
            files.append(path)
        return files


class _Session:
    """A coordinator's trajectory and those of its sub-agents, which embed as they arrive."""

    def __init__(self, record: Record) -> None:
        self.root = _trajectory(record)
        self.trajectories: dict[str, dict[str, Any]] = {}
        self._index(record, self.root)

    def adopt(self, record: Record) -> bool:
        """Embed `record` if it belongs to this session (its spawner is already here)."""
        parent = self.trajectories.get(record.parent_id or "")
        if parent is None:
            return False
        child = _trajectory(record)
        _embed(parent, child, record)
        self._index(record, child)
        return True

    def _index(self, record: Record, trajectory: dict[str, Any]) -> None:
        self.trajectories[record.id] = trajectory
        for sub in record.subagents:  # records loaded nested rather than one after another
            child = _trajectory(sub)
            _embed(trajectory, child, sub)
            self._index(sub, child)


def _embed(parent: dict[str, Any], child: dict[str, Any], record: Record) -> None:
    parent.setdefault("subagent_trajectories", []).append(child)
    for step in parent["steps"]:
        for result in (step.get("observation") or {}).get("results", []):
            if record.spawned_by and result.get("source_call_id") == record.spawned_by:
                result["subagent_trajectory_ref"] = [{"trajectory_id": record.id}]


def _trajectory(record: Record) -> dict[str, Any]:
    steps = _steps(record)
    trajectory: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "trajectory_id": record.id,
        "agent": _agent(record),
        "steps": steps,
        "final_metrics": _final_metrics(record, steps),
        "extra": _extra(record),
    }
    if record.parent_id is None:  # sub-agents inherit the run identity of their coordinator
        trajectory["session_id"] = f"execution-{record.execution_id}"
    return trajectory


def _agent(record: Record) -> dict[str, Any]:
    agent: dict[str, Any] = {"name": AGENT_NAME, "version": "unknown"}
    if record.model:
        agent["model_name"] = record.model
    if record.tools:
        agent["tool_definitions"] = [{"type": "function", "function": t} for t in record.tools]
    agent["extra"] = {"source": record.source}
    return agent


def _steps(record: Record) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    if record.system:
        steps.append({"source": "system", "message": record.system})
    steps.append({"source": "user", "message": record.prompt})
    for step in record.steps:
        if step.user_text:
            steps.append({"source": "user", "message": step.user_text})
        steps.append(_agent_step(step, record.model))
    for number, step_dict in enumerate(steps, 1):
        step_dict["step_id"] = number
    return steps


def _agent_step(step: Step, model: str) -> dict[str, Any]:
    out: dict[str, Any] = {"source": "agent", "message": step.text, "llm_call_count": 1}
    if step.model and step.model != model:
        out["model_name"] = step.model
    if step.thinking:
        out["reasoning_content"] = step.thinking
    if step.tool_calls:
        out["tool_calls"] = [
            {"tool_call_id": c.id, "function_name": c.name, "arguments": c.arguments}
            for c in step.tool_calls
        ]
    results = [_result(c.id, c.output, c.is_error) for c in step.tool_calls if c.answered]
    if results:
        out["observation"] = {"results": results}
    if step.usage:
        out["metrics"] = _metrics(step.usage)
    if step.bad:
        out["extra"] = {"review": {"bad": True, "comment": step.comment}}
    return out


def _result(call_id: str, output: str, is_error: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"source_call_id": call_id, "content": output}
    if is_error:  # ATIF has no error flag: keep ours where consumers can still see it
        result["extra"] = {"is_error": True}
    return result


def _metrics(usage: dict[str, int]) -> dict[str, int]:
    cached = usage.get("cache_read_input_tokens", 0)
    prompt = usage.get("input_tokens", 0) + usage.get("cache_creation_input_tokens", 0) + cached
    return {
        "prompt_tokens": prompt,
        "completion_tokens": usage.get("output_tokens", 0),
        "cached_tokens": cached,
    }


def _final_metrics(record: Record, steps: list[dict[str, Any]]) -> dict[str, Any]:
    metrics = [s["metrics"] for s in steps if "metrics" in s]
    stated = _metrics({name: getattr(record, name) for name in USAGE_KEYS})
    if not any(stated.values()):  # no totals stated (a record of steps only): their sums
        stated = {key: sum(m[key] for m in metrics) for key in stated}
    final: dict[str, Any] = {
        "total_prompt_tokens": stated["prompt_tokens"],
        "total_completion_tokens": stated["completion_tokens"],
        "total_cached_tokens": stated["cached_tokens"],
        "total_steps": len(steps),
        "extra": {"num_turns": record.num_turns, "duration_ms": record.duration_ms},
    }
    if record.parent_id is None:
        final["total_cost_usd"] = record.cost_usd
    return final


def _extra(record: Record) -> dict[str, Any]:
    return {
        "example_id": record.example_id,
        "execution_id": record.execution_id,
        "parent_id": record.parent_id,
        "spawned_by": record.spawned_by,
        "task": asdict(record.task),
        "success": record.success,
        "quality": record.quality,
        "golden": record.golden,
        "validated": record.validated,
        "tags": record.tags,
        "created_at": record.created_at,
        "final_text": record.final_text,
    }


# --- checks ----------------------------------------------------------------------------------


def _problem(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


def _unresolved_refs(row: dict[str, Any]) -> list[str]:
    """Harbor's models don't check that an embedded ref finds its trajectory; consumers do."""
    embedded = {sub.get("trajectory_id") for sub in row.get("subagent_trajectories") or []}
    problems = []
    for step in row.get("steps", []):
        for result in (step.get("observation") or {}).get("results", []):
            for ref in result.get("subagent_trajectory_ref") or []:
                if ref.get("trajectory_path") is None and ref["trajectory_id"] not in embedded:
                    problems.append(f"step {step['step_id']}: no embedded {ref['trajectory_id']}")
    for sub in row.get("subagent_trajectories") or []:
        problems += _unresolved_refs(sub)
    return problems
