"""Closing an imported execution: its metrics, times and status, then its scored example.

Tokens and cost come from the session's result message when it has one (the recorder applied
it), else from the tally of its responses; cost as the transcript states it, else estimated
from the price table. Times come from the payloads' timestamps. Status is the source's word
when it gives one, then the result's, then the trajectory's shape: a tool call without a
result means the session was cut off (or is still running).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from collection.importers.base import SessionFeed
from collection.importers.tracking import TOKEN_FIELDS, SessionTracker
from collection.models import Execution, TaskStatus, TrainingExample
from collection.scoring import apply_score
from collection.sessions.trajectory import tool_metrics

MAX_ERROR_TEXT = 4000


def close(execution: Execution, feed: SessionFeed, tracker: SessionTracker) -> None:
    _set_metrics(execution, feed, tracker)
    _set_times(execution, feed, tracker)
    _set_status(execution, feed, tracker)
    execution.metadata = execution.metadata | feed.metadata | _import_metadata(feed)
    execution.performance_metrics = execution.performance_metrics | tool_metrics(execution)
    execution.save()
    example, _ = TrainingExample.objects.get_or_create(execution=execution)
    apply_score(example)


def _set_metrics(execution: Execution, feed: SessionFeed, tracker: SessionTracker) -> None:
    execution.model = execution.model or tracker.main_model()
    if tracker.result is not None:
        return  # the result message's totals were applied when it was recorded
    totals = tracker.totals() | (feed.reported_usage or {})
    for name in TOKEN_FIELDS:
        setattr(execution, name, totals.get(name, 0))
    execution.usage = tracker.usage_summary()
    execution.num_turns = feed.reported_turns or tracker.main_turns()
    cost = tracker.cost()
    if feed.reported_cost is not None:
        execution.cost_usd, execution.cost_estimated = feed.reported_cost, False
        cost.basis = "transcript"
    else:
        execution.cost_usd, execution.cost_estimated = cost.usd, cost.estimated
    execution.metadata = execution.metadata | {
        "cost_basis": cost.basis,
        "unpriced_models": cost.unpriced_models,
    }


def _set_times(execution: Execution, feed: SessionFeed, tracker: SessionTracker) -> None:
    if tracker.first_at and tracker.last_at:
        execution.started_at, execution.completed_at = tracker.first_at, tracker.last_at
        if tracker.result is None or not execution.duration_ms:
            execution.duration_ms = _ms(tracker.last_at - tracker.first_at)
        return
    # No timestamps in the log (stream-json): the file's modification time is when it ended.
    ended = datetime.fromtimestamp(feed.file.stat().st_mtime, tz=UTC)
    execution.completed_at = execution.completed_at or ended
    if execution.duration_ms:
        execution.started_at = execution.completed_at - timedelta(
            milliseconds=execution.duration_ms
        )


def _ms(span: timedelta) -> int:
    return int(span / timedelta(milliseconds=1))


def _set_status(execution: Execution, feed: SessionFeed, tracker: SessionTracker) -> None:
    status, success, partial, error = _judge(feed, tracker)
    if feed.problems:
        partial = True
        skipped = f"{len(feed.problems)} unreadable line(s) skipped"
        error = f"{error}; {skipped}" if error else skipped
    execution.status, execution.success, execution.is_partial = status, success, partial
    execution.error = error[:MAX_ERROR_TEXT]
    text = feed.outcome.text
    if text is None and tracker.result is None:
        text = tracker.outcome_text()
    if text is not None:
        execution.outcome = text


def _judge(feed: SessionFeed, tracker: SessionTracker) -> tuple[str, bool | None, bool, str]:
    """Status, success, partial and error: the source's word first, then a result, then the
    trajectory's shape (a tool call without a result means the session was cut off)."""
    said = feed.outcome
    if said.status is not None:
        return said.status, said.success, bool(said.partial), said.error
    result = tracker.result
    if result is not None:
        if result.get("is_error") or result.get("subtype") != "success":
            return TaskStatus.FAILED, False, False, _result_error(result)
        return TaskStatus.COMPLETED, True, False, ""
    pending = tracker.pending_tool_calls
    if pending:
        return (
            TaskStatus.IN_PROGRESS,
            None,
            True,
            f"{len(pending)} tool call(s) without a result: still running or cut off",
        )
    return TaskStatus.COMPLETED, None, False, ""


def _result_error(result: dict[str, Any]) -> str:
    parts = [str(result.get("subtype") or "error")]
    parts += [str(e) for e in result.get("errors") or []]
    if result.get("result"):
        parts.append(str(result["result"])[:1000])
    return "; ".join(parts)


def _import_metadata(feed: SessionFeed) -> dict[str, Any]:
    problems = [str(p) for p in feed.problems.items]
    return {
        "importer": feed.importer,
        "file": str(feed.file),
        "import_key": feed.key,
        "imported_at": datetime.now(tz=UTC).isoformat(),
        "import_problems": problems
        + ([f"… and {feed.problems.dropped} more"] if feed.problems.dropped else []),
    }
