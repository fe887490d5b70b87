"""One lifecycle for every execution, whoever produced it (live session, chain, import,
multi-agent tracking, a job's rerun): open, record results, finish with an outcome.

    execution = open_execution(task, source=Source.SCRIPTED, prompt="Fix the bug")
    record_result(execution, result_payload)        # a ResultMessage's metrics (summed per step)
    example = finish(execution, Outcome.from_result(result_payload), scorer)

`finish` is the only place an execution's final state is written; it also derives the tool
metrics, scores the execution and creates (or rescores) its training example.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.utils import timezone

from collection.duplicates import mark_duplicates
from collection.models import (
    TOKEN_FIELDS,
    Execution,
    Source,
    Task,
    TaskStatus,
    TrainingExample,
)
from collection.schema import TaskDefinition
from collection.scoring import Scorer, apply_score
from collection.search import index_example
from collection.verification import VerifierResult

# The execution's metrics, named once: (model field, key in a ResultMessage or its usage).
RESULT_METRICS = {
    "num_turns": "num_turns",
    "duration_ms": "duration_ms",
    "api_duration_ms": "duration_api_ms",
    "cost_usd": "total_cost_usd",
}
METRIC_FIELDS = (*RESULT_METRICS, *TOKEN_FIELDS)
RESULT_SAVES = (*RESULT_METRICS, "usage", "outcome", "session_id", "performance_metrics")
MAX_ERROR_TEXT = 4000
# Importers whose session ids are Claude Code's own (the ids live sessions get).
CLAUDE_SESSION_IMPORTERS = {"claude_code", "stream_json"}


@dataclass
class Outcome:
    """How a session ended. `success` None means unknown (no result, no verifier)."""

    status: str
    success: bool | None = None
    error: str = ""
    partial: bool = False
    verifier: VerifierResult | None = None
    text: str | None = None  # the final answer, when the caller knows better than the result
    metrics: dict[str, Any] = field(default_factory=dict)
    # The session was cut short by infrastructure (no credentials, the model endpoint down or
    # failing, the CLI not starting), not by the agent: its job failed and it is no example.
    infrastructure: bool = False

    @classmethod
    def from_result(cls, result: dict[str, Any]) -> Outcome:
        """The one reading of a ResultMessage: an error result failed, anything else completed;
        an API error (status, terminal reason, no login) is an infrastructure failure."""
        if result.get("is_error") or result.get("subtype") != "success":
            return cls(
                TaskStatus.FAILED,
                False,
                result_error(result),
                infrastructure=is_api_failure(result),
            )
        return cls(TaskStatus.COMPLETED, True)


def is_api_failure(result: dict[str, Any]) -> bool:
    said = " ".join([str(result.get("result") or ""), *map(str, result.get("errors") or [])])
    return bool(
        result.get("api_error_status")
        or result.get("terminal_reason") == "api_error"
        or "Not logged in" in said
        or said.startswith("API Error")
    )


def result_error(result: dict[str, Any]) -> str:
    parts = [str(result.get("subtype") or "error")]
    if result.get("terminal_reason"):
        parts.append(f"terminal_reason={result['terminal_reason']}")
    if result.get("api_error_status"):
        parts.append(f"api_error_status={result['api_error_status']}")
    parts += [str(e) for e in result.get("errors") or []]
    if result.get("result"):
        parts.append(str(result["result"])[:1000])
    return "; ".join(parts)


def open_execution(
    task: TaskDefinition | Task,
    *,
    source: str,
    execution: Execution | None = None,
    prompt: str = "",
    **fields: Any,
) -> Execution:
    """Start (or continue, for a chain's next step) an execution: in progress, and partial
    until it is finished properly. (An importer asks `collected_live` first: the transcript of
    a session collected live is that session, not a new execution.)"""
    if execution is None:
        stored = task if isinstance(task, Task) else task.get_or_create_task()
        execution = Execution(task=stored, source=source, **fields)
    execution.status = TaskStatus.IN_PROGRESS
    if execution.source != Source.IMPORTED:  # imported sessions take their times from the log
        execution.started_at = execution.started_at or timezone.now()
    execution.is_partial = True
    if prompt:
        execution.metadata = execution.metadata | {"prompt": prompt}
    execution.save()
    return execution


def collected_live(importer: str, session_id: str, agent_id: str = "") -> Execution | None:
    """The live execution of the session a transcript records, if it was collected live.

    One session, one execution: a session is known by its session id (and agent id) within
    Claude Code's id space, which live collection, the SessionStore mirror and the Claude Code
    and stream-json importers share; other agents' ids are not comparable and never match.
    The row is locked, as the importer's own lookup locks the imported execution it finds.
    """
    if importer not in CLAUDE_SESSION_IMPORTERS or not session_id:
        return None
    return (
        Execution.objects.select_for_update()
        .filter(session_id=session_id, agent_id=agent_id)
        .exclude(source=Source.IMPORTED)
        .order_by("id")
        .first()
    )


def reset_execution(execution: Execution, **metadata: Any) -> None:
    """Empty an execution for a rerun (its worker died mid-session): the trajectory and every
    metric go, `metadata` records what was lost."""
    execution.messages.all().delete()
    execution.tool_calls.all().delete()
    execution.actions.all().delete()
    zeroed = dict.fromkeys(METRIC_FIELDS, 0) | {"duration_ms": None, "api_duration_ms": None}
    Execution.objects.filter(pk=execution.pk).update(
        **zeroed,
        status=TaskStatus.PENDING,
        session_id="",
        started_at=None,
        completed_at=None,
        performance_metrics={},
        error="",
        metadata=execution.metadata | metadata,
    )
    execution.refresh_from_db()


def record_result(execution: Execution, result: dict[str, Any], *, step: str = "") -> None:
    """Add a ResultMessage's metrics to the execution; status and success wait for `finish`.

    Adds rather than sets, so that a chain's steps sum up; a step's own figures are also kept
    in `performance_metrics["steps"]`.
    """
    usage = result.get("usage") or {}
    for name, key in RESULT_METRICS.items():
        setattr(execution, name, (getattr(execution, name) or 0) + (result.get(key) or 0))
    for name in TOKEN_FIELDS:
        setattr(execution, name, getattr(execution, name) + (usage.get(name) or 0))
    if not step:
        execution.usage = usage | {"model_usage": result.get("model_usage")}
    execution.outcome = result.get("result") or ""
    execution.session_id = execution.session_id or result.get("session_id") or ""
    if step:
        set_step_metrics(
            execution,
            step,
            session_id=result.get("session_id"),
            subtype=result.get("subtype"),
            is_error=result.get("is_error"),
            num_turns=result.get("num_turns"),
            duration_ms=result.get("duration_ms"),
            cost_usd=result.get("total_cost_usd"),
            usage=usage,
        )
    # Only what it changed: the SessionStore mirror writes the metadata of this row meanwhile.
    execution.save(update_fields=[*RESULT_SAVES, *TOKEN_FIELDS])


def set_step_metrics(execution: Execution, step: str, **fields: Any) -> None:
    """Merge `fields` into a chain step's entry of `performance_metrics["steps"]`.

    A list of {"name": ...} dicts in run order: PostgreSQL's JSONB doesn't keep key order.
    """
    steps = list(execution.performance_metrics.get("steps", []))
    entry = next((s for s in steps if s["name"] == step), None)
    if entry is None:
        entry = {"name": step}
        steps.append(entry)
    entry.update(fields)
    execution.performance_metrics = execution.performance_metrics | {"steps": steps}


def finish(
    execution: Execution, outcome: Outcome, scorer: Scorer | str | None = None
) -> TrainingExample | None:
    """Close an execution with its outcome, score it, and create or rescore its example.

    An infrastructure failure keeps its execution (to see what went wrong) but makes no
    example: nothing the agent did is in it.
    """
    now = timezone.now()
    metrics = tool_metrics(execution) | outcome.metrics
    if outcome.verifier is not None:
        metrics["verifier"] = outcome.verifier.as_metrics()
    if outcome.infrastructure:
        metrics["infrastructure_failure"] = True
    execution.performance_metrics = execution.performance_metrics | metrics
    execution.status = outcome.status
    execution.success = (
        False if outcome.status in (TaskStatus.FAILED, TaskStatus.CANCELLED) else outcome.success
    )
    execution.error = outcome.error[:MAX_ERROR_TEXT]
    execution.is_partial = outcome.partial
    if outcome.text is not None:
        execution.outcome = outcome.text
    execution.completed_at = execution.completed_at or now
    if execution.duration_ms is None and execution.started_at:
        elapsed = execution.completed_at - execution.started_at
        execution.duration_ms = int(elapsed / timedelta(milliseconds=1))
    execution.save()
    _join_mirror(execution)
    if outcome.infrastructure:
        TrainingExample.objects.filter(execution=execution).delete()
        return None
    example, _ = TrainingExample.objects.get_or_create(execution=execution)
    index_example(example)
    return mark_duplicates(apply_score(example, scorer))


# Called with each execution `finish` saves, before its example is made: the SessionStore
# registers how a transcript mirrored meanwhile joins its live session (one session, one
# execution) in AppConfig.ready, so that this lower layer doesn't import the sessions one.
FINISH_HOOKS: list[Callable[[Execution], None]] = []


def _join_mirror(execution: Execution) -> None:
    for hook in FINISH_HOOKS:
        hook(execution)


def tool_metrics(execution: Execution) -> dict[str, Any]:
    """How an execution used its tools, for `performance_metrics`."""
    calls = list(execution.tool_calls.values_list("name", "is_error"))
    errors = sum(1 for _, is_error in calls if is_error)
    return {
        "tool_calls": len(calls),
        "tool_errors": errors,
        "tool_error_rate": round(errors / len(calls), 4) if calls else 0.0,
        "tools_used": sorted({name for name, _ in calls}),
    }
