"""Closing an imported execution: its metrics, times and status, then its scored example.

Tokens and cost come from the session's result message when it has one (the recorder applied
it), else from the tally of its responses; cost as the transcript states it, else estimated
from the price table. Times come from the payloads' timestamps. Status is the source's word
when it gives one, then the result's, then the trajectory's shape: a tool call without a
result means the session was cut off (or is still running). The task it was filed under is then
categorised from what the session did (`categorise`), unless a person already chose.

A transcript of a session that was collected live is the same session (see
`lifecycle.open_execution`): its execution keeps the live metrics and outcome, which the
stream reported exactly; the transcript adds the lines the stream never had (the prompt, the
CLI's own lines) and its import metadata. Its responses are already stored one line per
message, as the stream sent them, so the merged copies the import just wrote are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import groupby
from operator import itemgetter
from typing import Any

from collection.importers.base import SessionFeed
from collection.importers.categorise import ToolUse, categorise
from collection.importers.tracking import SessionTracker
from collection.lifecycle import Outcome, finish_many, update_running
from collection.models import (
    TOKEN_FIELDS,
    AgentAction,
    Execution,
    Source,
    Task,
    TaskStatus,
    ToolCall,
)
from collection.sessions.task_inference import categorise_task


@dataclass
class Closing:
    """An imported execution ready to be finished: its state set in memory, its outcome."""

    execution: Execution
    outcome: Outcome
    prompt: str  # what categorising reads besides the tool calls


def prepare(execution: Execution, feed: SessionFeed, tracker: SessionTracker) -> Closing | None:
    """Set what the feed and the tracker say on the execution (nothing written yet); None for
    a session collected live, which keeps its live record and is done here."""
    if execution.source != Source.IMPORTED:
        _join_live(execution, feed)
        return None
    _set_metrics(execution, feed, tracker)
    _set_times(execution, feed, tracker)
    execution.metadata = execution.metadata | feed.metadata | _import_metadata(feed)
    execution.import_key = feed.key[:255]
    prompt = tracker.prompt or feed.task_name or execution.task.description
    return Closing(execution, _outcome(feed, tracker), prompt)


def close_all(closings: list[Closing]) -> None:
    """Categorise and finish prepared executions, in a few statements for the lot."""
    _categorise(closings)
    finish_many([(c.execution, c.outcome) for c in closings])


def close_running(closing: Closing) -> None:
    """A session still being written (the watch read it): its metrics and state only; it is
    categorised, scored and made an example by `close_all` once it is over."""
    update_running(closing.execution, closing.outcome)


def _categorise(closings: list[Closing]) -> None:
    """File each session's task under what it did (one read of their tool calls, in id order;
    a task shared by several sessions takes the last one's, as one at a time would)."""
    closings = sorted(closings, key=lambda c: c.execution.pk)
    rows = (
        ToolCall.objects.filter(execution__in=[c.execution for c in closings])
        .order_by("execution_id", "id")
        .values_list("execution_id", "name", "input", "is_error")
    )
    sessions = groupby(rows.iterator(chunk_size=500), key=itemgetter(0))
    current = next(sessions, None)
    tasks: dict[int, Task] = {}
    for closing in closings:
        execution, calls = closing.execution, []
        if current is not None and current[0] == execution.pk:
            calls = [ToolUse(*row[1:]) for row in current[1]]
            current = next(sessions, None)
        found = categorise(closing.prompt, calls, turns=execution.num_turns or 0)
        execution.metadata = execution.metadata | {
            "categorised": {"category": found.category, "difficulty": found.difficulty}
            | found.signals
        }
        # One instance per task, so the sessions filed under it see each other's changes.
        task = tasks.setdefault(execution.task_id, execution.task)
        execution.task = task
        if (task.category, task.difficulty) != (found.category, found.difficulty):
            categorise_task(task, found.category, found.difficulty)


def _join_live(execution: Execution, feed: SessionFeed) -> None:
    """The transcript of a session collected live: keep the live record, drop replays."""
    _drop_replayed_responses(execution)
    metadata = execution.metadata | _import_metadata(feed)
    Execution.objects.filter(pk=execution.pk).update(metadata=metadata)
    execution.metadata = metadata


def _drop_replayed_responses(execution: Execution) -> None:
    """Merged responses whose lines the live stream already stored, one message per line."""
    keys = set(execution.messages.values_list("uuid", flat=True))
    replays = [
        m.pk
        for m in execution.messages.filter(type="assistant").only("uuid", "payload")
        if m.payload.get("uuid") in keys and m.uuid != m.payload.get("uuid")
    ]
    execution.messages.filter(pk__in=replays).delete()
    # Their tool calls were stored already; only the actions were written again.
    seen: set[str] = set()
    for action in execution.actions.exclude(tool_use_id="").order_by("id"):
        if action.tool_use_id in seen:
            AgentAction.objects.filter(pk=action.pk).delete()
        seen.add(action.tool_use_id)


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


def _outcome(feed: SessionFeed, tracker: SessionTracker) -> Outcome:
    outcome = _judge(feed, tracker)
    if feed.problems:
        outcome.partial = True
        skipped = f"{len(feed.problems)} unreadable line(s) skipped"
        outcome.error = f"{outcome.error}; {skipped}" if outcome.error else skipped
    if outcome.text is None and tracker.result is None:
        outcome.text = tracker.outcome_text()
    return outcome


def _judge(feed: SessionFeed, tracker: SessionTracker) -> Outcome:
    """The source's word first, then a result, then the trajectory's shape (a tool call
    without a result means the session was cut off, or is still running)."""
    if feed.outcome is not None:
        return replace(feed.outcome)  # a copy: the writer adds to it
    if tracker.result is not None:
        return Outcome.from_result(tracker.result)
    pending = tracker.pending_tool_calls
    if pending:
        cut_off = f"{len(pending)} tool call(s) without a result: still running or cut off"
        return Outcome(TaskStatus.IN_PROGRESS, None, cut_off, partial=True)
    return Outcome(TaskStatus.COMPLETED)


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
