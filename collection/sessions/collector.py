"""Collecting real agent sessions: every SDK message stored as it arrives, then scored.

    collector = TrainingDataCollector(storage)
    async with collector.collect_from_query(task=task, prompt="...", query_func=query,
                                            options=ClaudeAgentOptions(...)) as messages:
        async for msg in messages:
            pass  # stored as they arrive
    collector.last_example  # the scored TrainingExample

    result = await collector.run(task, "...", options=options)   # the same, as a SessionResult

Without `options`, a session runs on the embedded default, the scripted model, offline
(`default_options`); give `ClaudeAgentOptions` of your own for real Claude. The execution's
source says which (`scripted` when the options point at the scripted model).

Success comes from the `ResultMessage` and from the task's verifier command, never from "the
loop ended". A crash, kill, timeout or cancellation still leaves an execution with every
message that arrived, marked partial, with the error text. The execution is opened and
finished through `collection.lifecycle`, like every other execution.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from claude_agent_sdk import ClaudeAgentOptions, ResultError, query
from django import db
from django.db import transaction

from collection.lifecycle import Outcome, finish, open_execution, set_step_metrics
from collection.models import Execution, Source, Task, TaskStatus, TrainingExample
from collection.schema import TaskDefinition
from collection.scoring import Scorer
from collection.scripted_model.request import API_KEY_PREFIX
from collection.scripted_model.runtime import scripted_env
from collection.sessions.trajectory import TrajectoryRecorder, to_payload
from collection.storage import TrainingStorage, seed_storage
from collection.verification import VerifierResult, run_verifier

T = TypeVar("T")

# Sandboxes of sessions run on the default options, removed when the process exits.
_sandboxes: tempfile.TemporaryDirectory[str] | None = None


def default_options(
    *, policy: str = "echo", seed: int = 0, script: Any = None, **options: Any
) -> ClaudeAgentOptions:
    """`ClaudeAgentOptions` (any of its keywords) on the embedded default model: the scripted
    model, on loopback, offline.

    `policy`, `seed` and `script` choose what the scripted model plays
    (`collection.scripted_model.POLICIES`; the default `echo` answers in one text turn). The
    CLI runs tools for real in its working directory: without `cwd`, a fresh empty sandbox.
    Its state goes beside the sandbox, never to ~/.claude.
    """
    global _sandboxes
    if _sandboxes is None:
        _sandboxes = tempfile.TemporaryDirectory(prefix="trainingdash-sessions-")
    sandbox = Path(tempfile.mkdtemp(dir=_sandboxes.name))
    cwd = Path(options.pop("cwd", None) or sandbox / "work")
    cwd.mkdir(parents=True, exist_ok=True)
    env = scripted_env(policy, seed, script, cwd=cwd, config_dir=sandbox / "config")
    return ClaudeAgentOptions(cwd=str(cwd), env=env | options.pop("env", {}), **options)


def source_of(options: ClaudeAgentOptions) -> str:
    """Where a session's data comes from: the scripted model (its API key says so) or Claude."""
    key = str((options.env or {}).get("ANTHROPIC_API_KEY", ""))
    return Source.SCRIPTED if key.startswith(f"{API_KEY_PREFIX}:") else Source.CLAUDE


@dataclass
class SessionResult:
    """What collecting a session (or a chain) gave: the execution, how it ended, its example
    (None for a chain step, which leaves the execution open) and the agent's final answer."""

    execution: Execution
    outcome: Outcome
    example: TrainingExample | None = None
    result_text: str = ""


@dataclass
class SessionControl:
    """How a job runner stops a session with a reason: it sets `stopping` and cancels the
    session's task; the execution is closed once, with that reason."""

    stopping: Outcome | None = None

    def may_write(self) -> bool:
        """Whether the session may still write (checked in each write's transaction): a job
        runner says no once its lease is lost, and the session then writes nothing more."""
        return True


def fenced(control: SessionControl | None, fn: Callable[..., T], *args: Any) -> T | None:
    """`fn(*args)` in one transaction with `control.may_write()`; nothing when it says no."""
    with transaction.atomic():
        if control is not None and not control.may_write():
            return None
        return fn(*args)


class TrainingDataCollector:
    """Collects SDK sessions into executions and scored training examples."""

    def __init__(
        self, storage: TrainingStorage | None = None, quality_scorer: Scorer | str | None = None
    ) -> None:
        self.storage = seed_storage(storage)
        self.quality_scorer = quality_scorer
        # The seed's way to reach what `collect_from_query` made: the last finished example.
        self.last_example: TrainingExample | None = None

    @asynccontextmanager
    async def collect_from_query(
        self,
        task: TaskDefinition | Task,
        prompt: str,
        query_func: Callable[..., AsyncIterator[Any]] = query,
        options: ClaudeAgentOptions | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AsyncIterator[Any]]:
        """Run `query_func(prompt=, options=)`, yielding its messages while storing them.

        Keywords: `execution` (continue this one), `verifier` (command; else the task's),
        `source` (default: `source_of(options)`), `on_message`, `control` (a
        `SessionControl`), and for a chain step `step` with `finalize=False` (the execution
        stays open).
        """
        async with self._session(task, prompt, query_func, options, **kwargs) as (_, stream):
            yield stream

    async def run(
        self,
        task: TaskDefinition | Task,
        prompt: str,
        query_func: Callable[..., AsyncIterator[Any]] = query,
        options: ClaudeAgentOptions | None = None,
        **kwargs: Any,
    ) -> SessionResult:
        """Collect a whole session (keywords as for `collect_from_query`)."""
        async with self._session(task, prompt, query_func, options, **kwargs) as (run, stream):
            async for _ in stream:
                pass
        assert run.result is not None
        return run.result

    @asynccontextmanager
    async def _session(
        self,
        task: TaskDefinition | Task,
        prompt: str,
        query_func: Callable[..., AsyncIterator[Any]],
        options: ClaudeAgentOptions | None,
        *,
        execution: Execution | None = None,
        verifier: str | None = None,
        source: str | None = None,
        on_message: Callable[[Any], None] | None = None,
        control: SessionControl | None = None,
        step: str = "",
        finalize: bool = True,
    ) -> AsyncIterator[tuple[_SessionRun, AsyncGenerator[Any, None]]]:
        options = options or default_options()
        run = _SessionRun(self, options, verifier, on_message, control, step, finalize)
        await run.start(task, execution, source or source_of(options), prompt)
        stream = run.stream(query_func(prompt=prompt, options=options))
        try:
            yield run, stream
        finally:
            await stream.aclose()
            await run.close()

    async def finalize(
        self, execution: Execution, outcome: Outcome, control: SessionControl | None = None
    ) -> TrainingExample | None:
        """Close an execution with an outcome, score it and make its training example (none
        for an infrastructure failure); nothing when `control` says the session may no longer
        write."""
        closing = partial(_finish_fresh, execution, outcome, self.quality_scorer)
        example = await asyncio.to_thread(in_fresh_connection, fenced, control, closing)
        self.last_example = example
        return example

    async def verify(
        self, execution: Execution, options: ClaudeAgentOptions | None, command: str | None = None
    ) -> VerifierResult | None:
        """Run the verifier (`command`, else the task's) in the session's working directory."""
        if command is None:
            command = await asyncio.to_thread(in_fresh_connection, _task_verifier, execution.pk)
        if not command:
            return None
        cwd = str(options.cwd) if options and options.cwd else None
        return await asyncio.to_thread(run_verifier, command, cwd)


class _SessionRun:
    """One session's collection: a private DB thread, the recorder, and how it ended."""

    def __init__(
        self,
        collector: TrainingDataCollector,
        options: ClaudeAgentOptions | None,
        verifier: str | None,
        on_message: Callable[[Any], None] | None,
        control: SessionControl | None,
        step: str,
        finalize: bool,
    ) -> None:
        self.collector = collector
        self.options = options
        self.verifier = verifier
        self.on_message = on_message
        self.control = control or SessionControl()
        self.step = step
        self.finalize = finalize
        # Django connections are per thread: one thread per session keeps its writes ordered.
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="collector-db")
        self.outcome = Outcome(TaskStatus.IN_PROGRESS)
        self.recorder: TrajectoryRecorder | None = None
        self.result: SessionResult | None = None
        self.prompt = ""
        self._writes: list[asyncio.Future[Any]] = []

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db, partial(fn, *args, **kwargs))

    async def start(
        self, task: TaskDefinition | Task, execution: Execution | None, source: str, prompt: str
    ) -> None:
        self.prompt = prompt
        execution = await self._call(
            open_execution, task, source=source, execution=execution, prompt=prompt
        )
        self.recorder = await self._call(TrajectoryRecorder, execution, step=self.step)

    async def stream(self, messages: AsyncIterator[Any]) -> AsyncGenerator[Any, None]:
        assert self.recorder is not None
        loop = asyncio.get_running_loop()
        try:
            async for message in messages:
                # Written in order on the session's DB thread while the agent goes on; the
                # consumer doesn't wait for the database (drained before judging).
                write = partial(fenced, self.control, self.recorder.record, to_payload(message))
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
            self.outcome = Outcome(
                TaskStatus.CANCELLED, error="stopped before the end", partial=True
            )
            raise
        except asyncio.CancelledError:
            stopped = Outcome(TaskStatus.CANCELLED, error="cancelled", partial=True)
            self.outcome = self.control.stopping or stopped
            raise
        except Exception as exc:
            self.outcome = Outcome(TaskStatus.FAILED, error=describe(exc), partial=True)
            raise
        finally:
            # Stops the CLI when we leave early; a no-op after a normal end. The SDK's `query`
            # is an async generator, though typed as an iterator.
            if isinstance(messages, AsyncGenerator):
                await messages.aclose()
            await self._drain()
        await self._judge()

    async def _drain(self) -> None:
        writes, self._writes = self._writes, []
        await asyncio.gather(*writes)

    async def _judge(self) -> None:
        """After the stream ended: status and success from the result and the verifier."""
        assert self.recorder is not None
        result = self.recorder.result
        if result is None:
            self.outcome = Outcome(
                TaskStatus.FAILED, error="session ended without a result", partial=True
            )
            return
        outcome = Outcome.from_result(result)
        if not outcome.infrastructure:
            # Also when the CLI stopped the agent (turns, budget): the reviewer sees how far
            # the workspace got. Success stays False for a session that did not complete.
            execution = self.recorder.execution
            outcome.verifier = await self.collector.verify(execution, self.options, self.verifier)
        if outcome.status == TaskStatus.COMPLETED:
            outcome.success = outcome.verifier.passed if outcome.verifier else True
        self.outcome = outcome

    async def close(self) -> None:
        try:
            if self.recorder is None:
                return
            execution = self.recorder.execution
            text = str((self.recorder.result or {}).get("result") or "")
            if not self.recorder.reached_model and self.outcome.status != TaskStatus.CANCELLED:
                self.outcome = never_reached_model(self.outcome)
            example = None
            if self.finalize:
                scorer = self.collector.quality_scorer
                close = self._call(
                    fenced, self.control, _finish_fresh, execution, self.outcome, scorer
                )
                example = await asyncio.shield(close)
            else:
                close = self._call(
                    fenced,
                    self.control,
                    _close_step,
                    execution,
                    self.step,
                    self.outcome,
                    self.prompt,
                )
                await asyncio.shield(close)
            self.result = SessionResult(execution, self.outcome, example, text)
            if self.finalize:
                self.collector.last_example = example
        finally:
            await self._call(_close_connection)
            self._db.shutdown(wait=False)


def never_reached_model(outcome: Outcome) -> Outcome:
    """No model ever answered (no credentials, endpoint down, the CLI didn't start): however
    the session ended, it is an infrastructure failure, not something the agent did."""
    reason = outcome.error or "the session ended"
    return replace(
        outcome,
        status=TaskStatus.FAILED,
        success=False,
        error=f"no model response: {reason}",
        infrastructure=True,
        verifier=None,
    )


def _task_verifier(execution_id: int) -> str:
    task = Task.objects.get(executions__pk=execution_id)
    return str(task.metadata.get("verifier", "") or "")


def _close_connection() -> None:
    db.connection.close()  # this thread's connection: evaluated here, not by the caller


def in_fresh_connection(fn: Callable[..., T], *args: Any) -> T:
    try:
        return fn(*args)
    finally:
        db.connection.close()


def _close_step(execution: Execution, step: str, outcome: Outcome, prompt: str) -> None:
    execution.refresh_from_db()
    set_step_metrics(execution, step, status=outcome.status, error=outcome.error, prompt=prompt)
    execution.save(update_fields=["performance_metrics"])


def _finish_fresh(
    execution: Execution, outcome: Outcome, scorer: Scorer | str | None
) -> TrainingExample | None:
    execution.refresh_from_db()  # the recorder's thread wrote it last
    return finish(execution, outcome, scorer)


def describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    stderr = getattr(exc, "stderr", None)
    return f"{text}\n{stderr}"[:4000] if stderr else text[:4000]
