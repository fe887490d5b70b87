"""Collecting real agent sessions: every SDK message stored as it arrives, then scored.

    collector = TrainingDataCollector(storage)
    async with collector.collect_from_query(task=task, prompt="...", query_func=query,
                                            options=ClaudeAgentOptions(...)) as messages:
        async for msg in messages:
            pass  # stored as they arrive
    collector.last_example  # the scored TrainingExample

Success comes from the `ResultMessage` and from the task's verifier command, never from "the
loop ended". A crash, kill, timeout or cancellation still leaves an execution with every
message that arrived, marked partial, with the error text.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from claude_agent_sdk import ClaudeAgentOptions, ResultError, query
from django import db
from django.utils import timezone

from collection.models import Execution, Source, Task, TaskStatus, TrainingExample
from collection.schema import TaskDefinition
from collection.scoring import Scorer, apply_score
from collection.sessions.trajectory import (
    TrajectoryRecorder,
    finish,
    set_step_metrics,
    to_payload,
    tool_metrics,
)

VERIFIER_TIMEOUT_S = 300


class CollectionError(Exception):
    """A session could not be collected. `retryable` says whether trying again can help."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass
class VerifierResult:
    command: str
    exit_code: int
    output: str

    @property
    def passed(self) -> bool:
        return self.exit_code == 0


def run_verifier(command: str, cwd: str | None) -> VerifierResult:
    """Decide success from the workspace itself: the command's exit status."""
    try:
        done = subprocess.run(
            command,
            shell=True,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=VERIFIER_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        return VerifierResult(command, 124, f"verifier timed out after {exc.timeout}s")
    return VerifierResult(command, done.returncode, (done.stdout + done.stderr)[-4000:])


def detect_source(options: ClaudeAgentOptions | None) -> str:
    env = options.env if options else {}
    return (
        Source.SCRIPTED
        if env.get("ANTHROPIC_API_KEY", "").startswith("scripted")
        else Source.CLAUDE
    )


@dataclass
class SessionOutcome:
    status: str = TaskStatus.IN_PROGRESS
    error: str = ""
    partial: bool = False
    verifier: VerifierResult | None = None
    extra_metrics: dict[str, Any] = field(default_factory=dict)


class TrainingDataCollector:
    """Collects SDK sessions into executions and scored training examples."""

    def __init__(self, storage: Any = None, quality_scorer: Scorer | str | None = None) -> None:
        self.storage = storage
        self.quality_scorer = quality_scorer
        self.last_execution: Execution | None = None
        self.last_example: TrainingExample | None = None
        self.last_outcome = SessionOutcome()
        self.last_result_text = ""

    @asynccontextmanager
    async def collect_from_query(
        self,
        task: TaskDefinition | Task,
        prompt: str,
        query_func: Callable[..., AsyncIterator[Any]] = query,
        options: ClaudeAgentOptions | None = None,
        *,
        execution: Execution | None = None,
        verifier: str | None = None,
        source: str | None = None,
        on_message: Callable[[Any], None] | None = None,
        step: str = "",
        finalize: bool = True,
    ) -> AsyncIterator[AsyncIterator[Any]]:
        """Run `query_func(prompt=, options=)`, yielding its messages while storing them.

        With `finalize=False` (a chain step) the execution stays open: the step's outcome is
        left in `last_outcome` and the caller finishes the execution with `finalize()`.
        """
        run = _SessionRun(self, options, verifier, on_message, step=step, finalize=finalize)
        await run.start(task, execution, source or detect_source(options), prompt)
        stream = run.stream(query_func(prompt=prompt, options=options))
        try:
            yield stream
        finally:
            await stream.aclose()
            await run.close()

    async def finalize(self, execution: Execution, outcome: SessionOutcome) -> TrainingExample:
        """Close an execution with an outcome, score it and make its training example."""
        self.last_example = await asyncio.to_thread(
            _in_fresh_connection, _close_execution, execution, outcome, self.quality_scorer
        )
        return self.last_example

    async def verify(
        self, execution: Execution, options: ClaudeAgentOptions | None, command: str | None = None
    ) -> VerifierResult | None:
        """Run the verifier (`command`, else the task's) in the session's working directory."""
        if command is None:
            command = await asyncio.to_thread(_in_fresh_connection, _task_verifier, execution.pk)
        if not command:
            return None
        cwd = str(options.cwd) if options and options.cwd else None
        return await asyncio.to_thread(run_verifier, command, cwd)

    async def run(self, task: TaskDefinition | Task, prompt: str, **kwargs: Any) -> Execution:
        """Collect a whole session; returns the finished execution."""
        async with self.collect_from_query(task=task, prompt=prompt, **kwargs) as messages:
            async for _ in messages:
                pass
        assert self.last_execution is not None
        return self.last_execution


class _SessionRun:
    """One session's collection: a private DB thread, the recorder, and how it ended."""

    def __init__(
        self,
        collector: TrainingDataCollector,
        options: ClaudeAgentOptions | None,
        verifier: str | None,
        on_message: Callable[[Any], None] | None,
        *,
        step: str = "",
        finalize: bool = True,
    ) -> None:
        self.collector = collector
        self.step = step
        self.finalize = finalize
        self.options = options
        self.verifier = verifier
        self.on_message = on_message
        # Django connections are per thread: one thread per session keeps its writes ordered.
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="collector-db")
        self.outcome = SessionOutcome()
        self.recorder: TrajectoryRecorder | None = None
        self.prompt = ""
        self._writes: list[asyncio.Future[Any]] = []

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db, partial(fn, *args, **kwargs))

    async def start(
        self, task: TaskDefinition | Task, execution: Execution | None, source: str, prompt: str
    ) -> None:
        self.prompt = prompt
        execution = await self._call(_open_execution, task, execution, source, prompt)
        self.recorder = await self._call(TrajectoryRecorder, execution, step=self.step)
        self.collector.last_execution = execution

    async def stream(self, messages: AsyncIterator[Any]) -> AsyncIterator[Any]:
        assert self.recorder is not None
        loop = asyncio.get_running_loop()
        try:
            async for message in messages:
                # Written in order on the session's DB thread while the agent goes on; the
                # consumer doesn't wait for the database (drained before judging).
                write = partial(self.recorder.record, to_payload(message))
                self._writes.append(loop.run_in_executor(self._db, write))
                if self.on_message:
                    self.on_message(message)
                yield message
        except ResultError:
            # The CLI reported an error result (stored) and exited non-zero.
            await self._drain()
            if self.recorder.result is None:
                raise
        except GeneratorExit:
            # The consumer stopped reading before the session ended.
            self.outcome = SessionOutcome(TaskStatus.CANCELLED, "stopped before the end", True)
            raise
        except asyncio.CancelledError:
            self.outcome = SessionOutcome(TaskStatus.CANCELLED, "cancelled", True)
            raise
        except Exception as exc:
            self.outcome = SessionOutcome(TaskStatus.FAILED, _describe(exc), True)
            raise
        finally:
            # Stops the CLI when we leave early; a no-op after a normal end.
            await messages.aclose()
            await self._drain()
        await self._judge()

    async def _drain(self) -> None:
        writes, self._writes = self._writes, []
        await asyncio.gather(*writes)

    async def _judge(self) -> None:
        """After the stream ended: status and success from the result and the verifier."""
        result = self.recorder.result if self.recorder else None
        if result is None:
            self.outcome = SessionOutcome(TaskStatus.FAILED, "session ended without a result", True)
            return
        if result.get("is_error") or result.get("subtype") != "success":
            self.outcome = SessionOutcome(TaskStatus.FAILED, _result_error(result))
            return
        assert self.recorder is not None
        verdict = await self.collector.verify(self.recorder.execution, self.options, self.verifier)
        self.outcome = SessionOutcome(TaskStatus.COMPLETED, verifier=verdict)

    async def close(self) -> None:
        collector = self.collector
        try:
            if self.recorder is None:
                return
            collector.last_outcome = self.outcome
            collector.last_result_text = str((self.recorder.result or {}).get("result") or "")
            execution = self.recorder.execution
            if self.finalize:
                close = self._call(
                    _close_execution, execution, self.outcome, collector.quality_scorer
                )
                collector.last_example = await asyncio.shield(close)
            else:
                close = self._call(_close_step, execution, self.step, self.outcome, self.prompt)
                await asyncio.shield(close)
        finally:
            await self._call(_close_connection)
            self._db.shutdown(wait=False)


def _open_execution(
    task: TaskDefinition | Task, execution: Execution | None, source: str, prompt: str
) -> Execution:
    if execution is None:
        stored = task if isinstance(task, Task) else task.get_or_create_task()
        execution = Execution(task=stored, source=source)
    execution.status = TaskStatus.IN_PROGRESS
    execution.started_at = execution.started_at or timezone.now()
    execution.is_partial = True  # until the session ends properly
    execution.metadata = execution.metadata | {"prompt": prompt}
    execution.save()
    return execution


def _task_verifier(execution_id: int) -> str:
    task = Task.objects.get(executions__pk=execution_id)
    return str(task.metadata.get("verifier", "") or "")


def _close_connection() -> None:
    db.connection.close()  # this thread's connection: evaluated here, not by the caller


def _in_fresh_connection(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    finally:
        db.connection.close()


def _close_step(execution: Execution, step: str, outcome: SessionOutcome, prompt: str) -> None:
    execution.refresh_from_db()
    set_step_metrics(execution, step, status=outcome.status, error=outcome.error, prompt=prompt)
    execution.save(update_fields=["performance_metrics"])


def _close_execution(
    execution: Execution, outcome: SessionOutcome, scorer: Scorer | str | None
) -> TrainingExample:
    execution.refresh_from_db()
    if outcome.verifier is not None:
        execution.performance_metrics = execution.performance_metrics | {
            "verifier": {
                "command": outcome.verifier.command,
                "exit_code": outcome.verifier.exit_code,
                "output": outcome.verifier.output,
            }
        }
    if outcome.status == TaskStatus.COMPLETED:
        execution.success = outcome.verifier.passed if outcome.verifier else True
    execution.performance_metrics |= tool_metrics(execution) | outcome.extra_metrics
    finish(execution, outcome.status, error=outcome.error, partial=outcome.partial)
    example, _ = TrainingExample.objects.get_or_create(execution=execution)
    return apply_score(example, scorer)


def _result_error(result: dict[str, Any]) -> str:
    parts = [result.get("subtype") or "error"]
    if result.get("terminal_reason"):
        parts.append(f"terminal_reason={result['terminal_reason']}")
    if result.get("api_error_status"):
        parts.append(f"api_error_status={result['api_error_status']}")
    parts += [str(e) for e in result.get("errors") or []]
    if result.get("result"):
        parts.append(str(result["result"])[:1000])
    return "; ".join(parts)


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    stderr = getattr(exc, "stderr", None)
    return f"{text}\n{stderr}"[:4000] if stderr else text[:4000]
