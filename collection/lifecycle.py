"""One lifecycle for every execution, whoever produced it (live session, chain, import,
multi-agent tracking, a job's rerun): open, record results, finish with an outcome.

    execution = open_execution(task, source=Source.SCRIPTED, prompt="Fix the bug")
    record_result(execution, result_payload)        # a ResultMessage's metrics (summed per step)
    example = finish(execution, Outcome.from_result(result_payload), scorer)

`finish` is the only place an execution's final state is written; it also derives the tool
metrics, scores the execution and creates (or rescores) its training example.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import groupby
from operator import attrgetter, itemgetter
from typing import Any

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from collection.duplicates import (
    CONVERSATION_TYPES,
    fingerprint_of,
    mark_duplicates,
    regroup_many,
)
from collection.models import (
    TOKEN_FIELDS,
    Execution,
    Message,
    Source,
    Task,
    TaskStatus,
    ToolCall,
    TrainingExample,
)
from collection.rawsql import json_value, raw_rows
from collection.schema import TaskDefinition, TaskExecution, tool_calls_of
from collection.scoring import Scorer, apply_score, earns_golden, get_scorer, score
from collection.search import build_search_text, index_example
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
# What `finish` writes on an execution, and what an importer set before it (`finish_many`).
CLOSE_FIELDS = [
    f.name
    for f in Execution._meta.concrete_fields
    if not f.primary_key and f.name not in ("task", "created_by", "created_at")
]
BULK_BATCH = 500
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
    until it is finished properly. (An importer asks `known_session` first: the transcript of
    a session collected live or mirrored is that session, not a new execution.)"""
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


def known_session(
    importer: str, import_key: str, session_id: str, agent_id: str = ""
) -> Execution | None:
    """The execution a transcript is the record of, if there is one (locked), in one query:
    the one imported under `import_key`, else the session collected live, else its mirror.

    One session, one execution: a session is known by its session id (and agent id) within
    Claude Code's id space, which live collection, the SessionStore mirror and the Claude Code
    and stream-json importers share; other agents' ids are not comparable and never match.
    """
    same_session = Q(session_id=session_id, agent_id=agent_id)
    if importer not in CLAUDE_SESSION_IMPORTERS or not session_id:
        same_session = Q(pk__in=[])
    imported = Q(source=Source.IMPORTED, import_key=import_key)
    found = list(
        Execution.objects.select_for_update().filter(imported | same_session).order_by("id")
    )
    by_key = [e for e in found if e.source == Source.IMPORTED and e.import_key == import_key]
    live = [e for e in found if e.source != Source.IMPORTED]
    mirrors = [e for e in found if e.source == Source.IMPORTED and "mirror" in e.metadata]
    return next(iter(by_key + live + mirrors), None)


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
    _close(execution, outcome, tool_metrics(execution))
    execution.save()
    _join_mirror(execution)
    if outcome.infrastructure:
        TrainingExample.objects.filter(execution=execution).delete()
        return None
    example, _ = TrainingExample.objects.get_or_create(execution=execution)
    index_example(example)
    return mark_duplicates(apply_score(example, scorer))


def finish_many(
    closings: list[tuple[Execution, Outcome]], scorer: Scorer | str | None = None
) -> list[TrainingExample | None]:
    """`finish` for many executions at once (an import's sessions): the same rows, written in
    a few statements for the lot rather than a dozen per execution.

    Executions without an example get theirs made whole (search text, fingerprint, score) in
    one INSERT; one that already has an example is rescored through `finish`'s own path,
    which keeps a reviewer's choices.
    """
    executions = [execution for execution, _ in closings]
    calls = _calls_of(executions)
    for execution, outcome in closings:
        _close(execution, outcome, _metrics(calls.get(execution.pk, [])))
    _save_all(executions)
    for execution in executions:
        _join_mirror(execution)
    failed = [e.pk for e, outcome in closings if outcome.infrastructure]
    TrainingExample.objects.filter(execution_id__in=failed).delete()
    scored = [e for e, outcome in closings if not outcome.infrastructure]
    existing = set(
        TrainingExample.objects.filter(execution__in=scored).values_list("execution_id", flat=True)
    )
    made = _new_examples([e for e in scored if e.pk not in existing], get_scorer(scorer))
    examples: dict[int, TrainingExample | None] = {e.execution_id: e for e in made}
    for execution in scored:
        if execution.pk in existing:
            example = TrainingExample.objects.get(execution=execution)
            index_example(example)
            examples[execution.pk] = mark_duplicates(apply_score(example, scorer))
    return [examples.get(execution.pk) for execution in executions]


def update_running(execution: Execution, outcome: Outcome) -> None:
    """What `finish` writes on the execution itself, for a session still being written (a
    watched transcript): its metrics and state, in one UPDATE. Its example is made or rescored
    by `finish` once the session is over, not at every line it adds."""
    _close(execution, outcome, tool_metrics(execution))
    _save_all([execution])


def _close(execution: Execution, outcome: Outcome, metrics: dict[str, Any]) -> None:
    """Set an execution's final state in memory (the caller saves it)."""
    now = timezone.now()
    metrics = metrics | outcome.metrics
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


def _save_all(executions: list[Execution]) -> None:
    """`save()` for many executions in one executemany: `bulk_update`'s CASE per field and row
    took longer than the rest of closing them (measured with bench/import_throughput.py)."""
    fields = [Execution._meta.get_field(name) for name in CLOSE_FIELDS]
    quote = connection.ops.quote_name
    columns = ", ".join(f"{quote(str(f.column))} = %s" for f in fields)  # type: ignore[union-attr]
    sql = f"UPDATE {quote(Execution._meta.db_table)} SET {columns} WHERE id = %s"
    rows = [
        [f.get_db_prep_save(getattr(e, f.attname), connection) for f in fields] + [e.pk]  # type: ignore[union-attr]
        for e in executions
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _calls_of(executions: list[Execution]) -> dict[int, list[tuple[str, bool | None]]]:
    calls: dict[int, list[tuple[str, bool | None]]] = {}
    rows = ToolCall.objects.filter(execution__in=executions).order_by("id")
    for execution_id, name, is_error in rows.values_list("execution_id", "name", "is_error"):
        calls.setdefault(execution_id, []).append((name, is_error))
    return calls


def _new_examples(executions: list[Execution], scorer: Scorer) -> list[TrainingExample]:
    """Examples made whole before they are stored: one INSERT, then their duplicate groups."""
    if not executions:
        return []
    executions = sorted(executions, key=attrgetter("pk"))
    snapshots = Execution.objects.filter(pk__in=[e.pk for e in executions])
    snapshots = snapshots.select_related("task").prefetch_related("actions")
    calls = tool_calls_of([e.pk for e in executions])
    records = {e.pk: TaskExecution.from_execution(e, tool_calls=calls[e.pk]) for e in snapshots}
    examples = []
    for execution, (search_text, fingerprint) in zip(
        executions, _texts_and_fingerprints(executions), strict=True
    ):
        record = records[execution.pk]
        quality = score(record, scorer)
        examples.append(
            TrainingExample(
                execution=execution,
                quality_score=quality,
                scored_quality=quality,
                is_golden=earns_golden(quality, record.success),
                search_text=search_text,
                fingerprint=fingerprint,
            )
        )
    made = TrainingExample.objects.bulk_create(examples, batch_size=BULK_BATCH)
    regroup_many({e.fingerprint for e in made} - {""})
    return made


def _texts_and_fingerprints(executions: list[Execution]) -> Iterator[tuple[str, str]]:
    """Each execution's search text and fingerprint (executions in id order), from one query
    read a session at a time: memory holds the longest session, not the lot."""
    rows = (
        Message.objects.filter(execution__in=executions, type__in=CONVERSATION_TYPES)
        .order_by("execution_id", "seq")
        .values_list("execution_id", "payload")
    )
    sessions = groupby(raw_rows(rows, BULK_BATCH), key=itemgetter(0))
    current = next(sessions, None)
    for execution in executions:
        payloads: list[dict[str, Any]] = []
        if current is not None and current[0] == execution.pk:
            payloads = [json_value(payload) for _, payload in current[1]]
            current = next(sessions, None)
        prompt = str(execution.metadata.get("prompt") or "")
        yield (
            build_search_text(execution.task.name, prompt, payloads),
            fingerprint_of(execution.task_id, prompt, payloads),
        )


# Called with each execution `finish` saves, before its example is made: the SessionStore
# registers how a transcript mirrored meanwhile joins its live session (one session, one
# execution) in AppConfig.ready, so that this lower layer doesn't import the sessions one.
FINISH_HOOKS: list[Callable[[Execution], None]] = []


def _join_mirror(execution: Execution) -> None:
    for hook in FINISH_HOOKS:
        hook(execution)


def tool_metrics(execution: Execution) -> dict[str, Any]:
    """How an execution used its tools, for `performance_metrics`."""
    return _metrics(list(execution.tool_calls.values_list("name", "is_error")))


def _metrics(calls: list[tuple[str, bool | None]]) -> dict[str, Any]:
    errors = sum(1 for _, is_error in calls if is_error)
    return {
        "tool_calls": len(calls),
        "tool_errors": errors,
        "tool_error_rate": round(errors / len(calls), 4) if calls else 0.0,
        "tools_used": sorted({name for name, _ in calls}),
    }
