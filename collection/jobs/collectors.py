"""Collectors, one per job kind: how a job's spec becomes session(s) in its execution.

    COLLECTORS[job.kind].collect(run)   # -> SessionResult

A plug-in family like the importers: a small base class with one method, one registry. A
collector that can't run raises `trainingdash.broker.JobError` (whose `retryable` the broker
reads); a session that ran and failed is data, returned in the result.

Each collector first makes the run this machine's (`on_this_machine`): a template job's spec
names its template and keeps its commands' placeholders, filled here, in the worker, right
before the session starts; the template's workspace is laid into the sandbox.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from claude_agent_sdk import ClaudeAgentOptions

from collection.models import Execution, JobKind, Task
from collection.sessions.chains import ChainStep, ConversationChainCollector, default_step_options
from collection.sessions.collector import (
    SessionControl,
    SessionResult,
    TrainingDataCollector,
    VerifierResult,
)
from collection.sessions.spec import JobSpec
from collection.task_templates import resolve_spec
from trainingdash.broker import JobError


@dataclass
class JobRun:
    """What a collector gets from the runner: the job's task, spec and sandboxed options, its
    execution, and the runner's stop control."""

    task: Task
    spec: JobSpec
    options: ClaudeAgentOptions
    execution: Execution
    control: SessionControl
    on_message: Callable[[Any], None] | None = None

    def session_keywords(self) -> dict[str, Any]:
        return {
            "execution": self.execution,
            "source": self.spec.source,
            "control": self.control,
            "on_message": self.on_message,
        }


async def on_this_machine(run: JobRun) -> JobRun:
    """The run with its template's paths resolved on this machine (`resolve_spec`): the
    template's workspace copied into the sandbox, and on the scripted model the filled script
    in the session's environment. A run without a template reference is returned as it is."""
    return await asyncio.to_thread(_resolved, run)


def _resolved(run: JobRun) -> JobRun:
    spec = resolve_spec(run.spec)
    if spec is run.spec:
        return run
    if spec.workspace and run.options.cwd:
        shutil.copytree(spec.workspace, run.options.cwd, dirs_exist_ok=True)
    options = run.options
    if spec.backend == "scripted":
        from collection.scripted_model.runtime import scripted_env

        env = scripted_env(
            spec.policy,
            spec.seed,
            spec.script,
            cwd=options.cwd,
            config_dir=options.env.get("CLAUDE_CONFIG_DIR"),
        )
        options = dataclasses.replace(options, env=env)
    return dataclasses.replace(run, spec=spec, options=options)


class Collector:
    """Runs one job kind's session(s) into the job's execution and closes it."""

    async def collect(self, run: JobRun) -> SessionResult:
        raise NotImplementedError


class SessionCollector(Collector):
    """One SDK session; sub-agents (a multi-agent job's `agents`) are in its options."""

    async def collect(self, run: JobRun) -> SessionResult:
        run = await on_this_machine(run)
        return await TrainingDataCollector().run(
            run.task,
            run.spec.prompt,
            options=run.options,
            verifier=run.spec.verifier,
            **run.session_keywords(),
        )


class ChainCollector(Collector):
    """A conversation chain: its steps as sessions, in dependency order, in one execution."""

    async def collect(self, run: JobRun) -> SessionResult:
        run = await on_this_machine(run)
        if run.spec.chain is None:
            raise JobError("a chain job's spec has no chain")
        return await _ChainWithVerifier(run.spec.verifier).run_chain(
            run.spec.chain,
            run.task,
            run.spec.prompt,
            run.options,
            step_options=lambda step, options: _step_options(run.spec, step, options),
            **run.session_keywords(),
        )


class _ChainWithVerifier(ConversationChainCollector):
    """A chain verified by its spec's verifier (filled on this machine), not its task's."""

    def __init__(self, verifier: str | None) -> None:
        super().__init__()
        self.spec_verifier = verifier

    async def verify(
        self, execution: Execution, options: ClaudeAgentOptions | None, command: str | None = None
    ) -> VerifierResult | None:
        return await super().verify(execution, options, command or self.spec_verifier)


def _step_options(
    spec: JobSpec, step: ChainStep, options: ClaudeAgentOptions
) -> ClaudeAgentOptions:
    """A chain step's options; on the scripted model, the step's own script."""
    options = default_step_options(step, options)
    if spec.backend == "scripted" and "script" in step.extra:
        from collection.scripted_model.runtime import scripted_env

        env = scripted_env(
            spec.policy,
            spec.seed,
            step.extra["script"],
            cwd=options.cwd,
            config_dir=options.env.get("CLAUDE_CONFIG_DIR"),
        )
        options = dataclasses.replace(options, env=env)
    return options


COLLECTORS: dict[str, Collector] = {
    JobKind.SESSION: SessionCollector(),
    JobKind.MULTI_AGENT: SessionCollector(),  # the sub-agents are in the session's options
    JobKind.CHAIN: ChainCollector(),
}


def collector_for(kind: str) -> Collector:
    try:
        return COLLECTORS[kind]
    except KeyError:
        raise JobError(f"no collector for job kind {kind!r}") from None
