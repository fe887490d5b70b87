"""ATIF trajectories (Harbor's Agent Trajectory Interchange Format, one `trajectory.json`).

    report = import_file("jobs/run-1/task-1/agent/trajectory.json")

The document is validated with the Pydantic mirror of Harbor's models that our ATIF export
writes with (`exports.formats.atif.Trajectory`), then mapped back onto stream-json payloads:
- a "system" step is the system prompt, a "user" step a user message;
- an "agent" step is one assistant message: `reasoning_content` -> thinking, `message` -> text,
  `tool_calls` -> tool_use blocks, `metrics` -> usage (ATIF's prompt tokens include the cached
  ones, so input = prompt - cached; cache creation is not told apart in ATIF and counts as
  input); its `observation.results` -> a user message with a tool_result per answered call
  (`extra.is_error` marks a failed one, as our export writes it);
- a sub-agent trajectory, embedded (`subagent_trajectories`, referenced from a result's
  `subagent_trajectory_ref` by `trajectory_id`) or in a file of its own (referenced by
  `trajectory_path`, relative to the referencing file's folder, and read only inside it),
  follows the step that spawned it, its messages carrying the spawning call's id as
  `parent_tool_use_id`, as the live collector stores them.
The session id is the trajectory's `session_id`, else its `trajectory_id`, else the file's hash;
the stated `final_metrics.total_cost_usd` is the session's cost.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from collection.importers.base import Entry, Head, Importer, SessionFeed, TranscriptError
from collection.importers.reading import read_json_document
from exports.formats.atif import (
    AtifStep,
    ContentPart,
    FinalMetrics,
    Metrics,
    ObservationResult,
    SubagentTrajectoryRef,
    Trajectory,
)

_SCHEMA = re.compile(r'"schema_version"\s*:\s*"ATIF-v\d')


class AtifImporter(Importer):
    name = "atif"
    label = "ATIF trajectory"

    @classmethod
    def recognises(cls, head: Head) -> bool:
        return head.text.lstrip().startswith("{") and bool(_SCHEMA.search(head.text))

    def read(self, path: Path) -> Iterator[SessionFeed]:
        document, digest = read_json_document(path)
        try:
            trajectory = Trajectory.model_validate(document)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise TranscriptError(
                path, None, f"not a valid ATIF trajectory: {where}: {first['msg']}"
            ) from None
        feed = SessionFeed(importer=self.name, file=path, fallback_id=f"sha256:{digest[:40]}")
        feed.session_id = trajectory.session_id or trajectory.trajectory_id or ""
        _totals(feed, trajectory)
        feed.metadata = {"atif_schema_version": trajectory.schema_version}
        feed.metadata["atif_agent"] = trajectory.agent.model_dump(exclude={"tool_definitions"})
        feed.entries = chain(
            _entries(trajectory, feed, parent="", prefix="", seen={path.resolve()}),
            _result_entries(trajectory),
        )
        yield feed


def _totals(feed: SessionFeed, trajectory: Trajectory) -> None:
    final = trajectory.final_metrics
    if final is None:
        return
    if final.total_cost_usd is not None:
        feed.reported_cost = final.total_cost_usd
    totals = _stated_totals(final)
    if totals:  # the session's, beyond its steps' sums (sub-agents, every model)
        feed.reported_usage = _usage(*totals)
    turns = (final.extra or {}).get("num_turns")  # our export states it; Harbor's doesn't
    if isinstance(turns, int) and not isinstance(turns, bool) and turns > 0:
        feed.reported_turns = turns


def _entries(
    trajectory: Trajectory, feed: SessionFeed, *, parent: str, prefix: str, seen: set[Path]
) -> Iterator[Entry]:
    subagents = {s.trajectory_id: s for s in trajectory.subagent_trajectories or []}
    model = trajectory.agent.model_name or ""
    for step in trajectory.steps:
        uuid = f"{prefix}step-{step.step_id}"
        payload = _payload(step, uuid, model)
        yield Entry(payload=_common(payload, step, uuid, parent), uuid=uuid)
        results = step.observation.results if step.observation else []
        if results:
            uuid = f"{uuid}-results"
            message = {"role": "user", "content": [_result(r) for r in results]}
            payload = {"type": "user", "message": message}
            yield Entry(payload=_common(payload, step, uuid, parent), uuid=uuid)
        for result in results:
            for ref in result.subagent_trajectory_ref or []:
                spawner = result.source_call_id or ""
                sub = subagents.pop(ref.trajectory_id or "", None)
                if sub is not None:
                    named = f"{sub.trajectory_id}:"
                    yield from _entries(sub, feed, parent=spawner, prefix=named, seen=seen)
                elif ref.trajectory_path:
                    yield from _external(ref, step, feed, parent=spawner, seen=seen)
    for orphan in subagents:  # no call says who spawned it: there is no thread to put it in
        problem = f"sub-agent trajectory {orphan!r} is referenced by no result; skipped"
        feed.problems.add(TranscriptError(feed.file, None, problem))


def _external(
    ref: SubagentTrajectoryRef, step: AtifStep, feed: SessionFeed, *, parent: str, seen: set[Path]
) -> Iterator[Entry]:
    """A sub-agent trajectory kept in a file of its own (`trajectory_path`), read where the
    result that references it is, as an embedded one is. Only a file in the folder of the
    trajectory being imported (or below it) is read: a path elsewhere, or a URL, is reported
    and skipped, so an uploaded trajectory cannot make the server read other files."""
    where = str(ref.trajectory_path)
    folder = feed.file.resolve().parent
    target = (folder / where).resolve()
    reason = ""
    if "://" in where:
        reason = "not a local file (only files beside the trajectory are read)"
    elif not target.is_relative_to(folder):
        reason = "outside the trajectory's folder; not read"
    elif target in seen:
        reason = "already read (the trajectories reference each other); not read again"
    elif not target.is_file():
        reason = "no such file"
    sub = None if reason else _load_external(target, feed)
    if sub is None:
        if reason:
            problem = f"step {step.step_id}: sub-agent trajectory_path {where!r}: {reason}"
            feed.problems.add(TranscriptError(feed.file, None, problem))
        return
    prefix = f"{sub.trajectory_id or sub.session_id or where}:"
    yield from _entries(sub, feed, parent=parent, prefix=prefix, seen=seen | {target})


def _load_external(path: Path, feed: SessionFeed) -> Trajectory | None:
    try:
        document, _ = read_json_document(path)
        return Trajectory.model_validate(document)
    except TranscriptError as error:
        feed.problems.add(
            TranscriptError(path, error.line, f"sub-agent trajectory: {error.reason}")
        )
    except ValidationError as error:
        first = error.errors()[0]
        at = ".".join(str(part) for part in first["loc"])
        reason = f"not a valid ATIF sub-agent trajectory: {at}: {first['msg']}"
        feed.problems.add(TranscriptError(path, None, reason))
    return None


def _result_entries(trajectory: Trajectory) -> Iterator[Entry]:
    """The session's answer when no step says it (a result message's text, which our export
    keeps in `extra.final_text`): a result message, so the answer is not lost."""
    extra = trajectory.extra or {}
    final = extra.get("final_text")
    said = [_text(s.message) for s in trajectory.steps if s.source == "agent"]
    if not isinstance(final, str) or not final or final in [t for t in said if t][-1:]:
        return
    metrics = trajectory.final_metrics or FinalMetrics()
    failed = extra.get("success") is False
    payload = {
        "type": "result",
        "subtype": "error_during_execution" if failed else "success",
        "is_error": failed,
        "result": final,
        "session_id": trajectory.session_id,
        "total_cost_usd": metrics.total_cost_usd,
        "num_turns": (metrics.extra or {}).get("num_turns"),
        "duration_ms": (metrics.extra or {}).get("duration_ms"),
        "usage": _usage(*_stated_totals(metrics) or _all_metrics(trajectory)),
        "uuid": "result",
    }
    yield Entry(payload=payload, uuid="result")


def _stated_totals(final: FinalMetrics) -> tuple[int | None, int | None, int | None] | None:
    """The prompt, completion and cached token totals the trajectory states, if any."""
    totals = (final.total_prompt_tokens, final.total_completion_tokens, final.total_cached_tokens)
    return totals if any(total is not None for total in totals) else None


def _all_metrics(trajectory: Trajectory) -> tuple[int, int, int]:
    """Prompt, completion and cached tokens of every step, sub-agents' included."""
    totals = [0, 0, 0]
    for step in trajectory.steps:
        m = step.metrics or Metrics()
        for i, value in enumerate((m.prompt_tokens, m.completion_tokens, m.cached_tokens)):
            totals[i] += value or 0
    for sub in trajectory.subagent_trajectories or []:
        for i, value in enumerate(_all_metrics(sub)):
            totals[i] += value
    return totals[0], totals[1], totals[2]


def _payload(step: AtifStep, uuid: str, model: str) -> dict[str, Any]:
    text = _text(step.message)
    if step.source == "system":
        return {"type": "system", "subtype": "system_prompt", "content": text}
    if step.source == "user":
        return {"type": "user", "message": {"role": "user", "content": text}}
    blocks: list[dict[str, Any]] = []
    if step.reasoning_content:
        blocks.append({"type": "thinking", "thinking": step.reasoning_content})
    if text:
        blocks.append({"type": "text", "text": text})
    for call in step.tool_calls or []:
        blocks.append(
            {
                "type": "tool_use",
                "id": call.tool_call_id,
                "name": call.function_name,
                "input": call.arguments,
            }
        )
    message: dict[str, Any] = {
        "id": uuid,
        "role": "assistant",
        "model": step.model_name or model,
        "content": blocks,
    }
    if step.metrics is not None:
        message["usage"] = _usage(
            step.metrics.prompt_tokens, step.metrics.completion_tokens, step.metrics.cached_tokens
        )
    return {"type": "assistant", "message": message}


def _common(payload: dict[str, Any], step: AtifStep, uuid: str, parent: str) -> dict[str, Any]:
    payload = payload | {"uuid": uuid, "timestamp": step.timestamp}
    if parent and payload["type"] in ("user", "assistant"):
        payload["parent_tool_use_id"] = parent
    if step.extra:
        payload["atif_extra"] = step.extra
    return payload


def _result(result: ObservationResult) -> dict[str, Any]:
    is_error = bool((result.extra or {}).get("is_error"))
    content = _text(result.content) if result.content is not None else ""
    if result.source_call_id is None:  # an observation no call asked for: plain text
        return {"type": "text", "text": content}
    return {
        "type": "tool_result",
        "tool_use_id": result.source_call_id,
        "content": content,
        "is_error": is_error,
    }


def _usage(prompt: int | None, completion: int | None, cached: int | None) -> dict[str, int]:
    cached = cached or 0
    return {
        "input_tokens": max((prompt or 0) - cached, 0),
        "output_tokens": completion or 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


def _text(message: str | list[ContentPart]) -> str:
    if isinstance(message, str):
        return message
    return "\n".join(part.text or "" for part in message if part.type == "text")
