"""Conversation chains: steps run in dependency order, collected as one training example.

    chain = ConversationChain(name="debug_chain", steps=[
        ChainStep(name="identify", prompt="Identify the root cause", allowed_tools=["Read"]),
        ChainStep(name="fix", prompt="Fix the issue", allowed_tools=["Edit"],
                  depends_on=["identify"]),
    ])
    example = await ConversationChainCollector(storage).collect_from_chain(
        chain=chain, task=task, initial_prompt="Debug the failing test")

Without `options`, the steps run on the embedded default (the scripted model, offline; see
`collector.default_options`). Each step is its own SDK session in the same working directory;
a step's prompt carries the results of the steps it depends on. The example's execution holds
every step's messages (each tagged with its step) and per-step metrics in
`performance_metrics["steps"]` (a list in run order).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from functools import partial
from typing import Any

from claude_agent_sdk import ClaudeAgentOptions
from pydantic import BaseModel, ConfigDict, Field, model_validator

from collection.lifecycle import Outcome, open_execution
from collection.models import Execution, Task, TaskStatus, TrainingExample
from collection.schema import TaskDefinition
from collection.sessions.collector import (
    SessionControl,
    SessionResult,
    TrainingDataCollector,
    default_options,
    describe,
    in_fresh_connection,
    source_of,
)


class ChainStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    prompt: str
    allowed_tools: list[str] = Field(default_factory=list)
    depends_on: list[str] = Field(default_factory=list)
    max_turns: int | None = None
    # Free-form settings for a backend (e.g. the scripted model's script for this step).
    extra: dict[str, Any] = Field(default_factory=dict)


class ChainError(ValueError):
    """A chain is malformed (cycle, unknown dependency, duplicate step); nothing has run."""


class ConversationChain(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    steps: list[ChainStep] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_graph(self) -> ConversationChain:
        self.ordered_steps()
        return self

    def ordered_steps(self) -> list[ChainStep]:
        """Steps in dependency order (declaration order among independent steps)."""
        by_name: dict[str, ChainStep] = {}
        for step in self.steps:
            if step.name in by_name:
                raise ChainError(f"chain {self.name!r}: step {step.name!r} is defined twice")
            by_name[step.name] = step
        for step in self.steps:
            for dep in step.depends_on:
                if dep not in by_name:
                    raise ChainError(
                        f"chain {self.name!r}: step {step.name!r} depends on unknown step {dep!r}"
                    )
        ordered: list[ChainStep] = []
        done: set[str] = set()
        while len(ordered) < len(self.steps):
            ready = [s for s in self.steps if s.name not in done and set(s.depends_on) <= done]
            if not ready:
                stuck = next(s.name for s in self.steps if s.name not in done)
                raise ChainError(
                    f"chain {self.name!r}: step {stuck!r} is part of a dependency cycle"
                )
            ordered.append(ready[0])
            done.add(ready[0].name)
        return ordered


def compose_prompt(initial_prompt: str, step: ChainStep, results: dict[str, str]) -> str:
    parts = [initial_prompt.strip(), f"Current step ({step.name}): {step.prompt.strip()}"]
    if step.depends_on:
        earlier = "\n".join(f"[{dep}] {results.get(dep, '')}" for dep in step.depends_on)
        parts.append(f"Results of earlier steps:\n{earlier}")
    return "\n\n".join(p for p in parts if p)


def default_step_options(step: ChainStep, options: ClaudeAgentOptions) -> ClaudeAgentOptions:
    changes: dict[str, Any] = {}
    if step.allowed_tools:
        changes["allowed_tools"] = step.allowed_tools
    if step.max_turns:
        changes["max_turns"] = step.max_turns
    return dataclasses.replace(options, **changes)


StepOptions = Callable[[ChainStep, ClaudeAgentOptions], ClaudeAgentOptions]


class ConversationChainCollector(TrainingDataCollector):
    async def collect_from_chain(
        self,
        chain: ConversationChain,
        task: TaskDefinition | Task,
        initial_prompt: str,
        options: ClaudeAgentOptions | None = None,
        **kwargs: Any,
    ) -> TrainingExample | None:
        """Run the chain's steps in order; stops at the first step that fails. None when
        infrastructure cut the chain short (see `lifecycle.finish`)."""
        result = await self.run_chain(chain, task, initial_prompt, options, **kwargs)
        return result.example

    async def run_chain(
        self,
        chain: ConversationChain,
        task: TaskDefinition | Task,
        initial_prompt: str,
        options: ClaudeAgentOptions | None = None,
        *,
        execution: Execution | None = None,
        step_options: StepOptions = default_step_options,
        **session: Any,
    ) -> SessionResult:
        """The chain as one execution; `session` keywords go to every step (source, control,
        on_message)."""
        options = options or default_options()
        if execution is None:
            source = session.get("source") or source_of(options)
            start = partial(open_execution, task, source=source, prompt=initial_prompt)
            execution = await asyncio.to_thread(in_fresh_connection, start)
        results: dict[str, str] = {}
        outcome = Outcome(TaskStatus.COMPLETED)
        done: SessionResult | None = None
        for step in chain.ordered_steps():
            try:
                done = await self.run(
                    task,
                    compose_prompt(initial_prompt, step, results),
                    options=step_options(step, options),
                    execution=execution,
                    step=step.name,
                    finalize=False,
                    **session,
                )
            except (Exception, asyncio.CancelledError) as exc:
                # The step is closed; the chain's execution is finished here, then re-raise.
                ended = _interrupted(step, exc, session)
                await asyncio.shield(self.finalize(execution, ended, session.get("control")))
                raise
            execution, results[step.name] = done.execution, done.result_text
            if done.outcome.status != TaskStatus.COMPLETED:
                outcome = Outcome(
                    done.outcome.status,
                    error=f"step {step.name!r}: {done.outcome.error}",
                    infrastructure=done.outcome.infrastructure,
                )
                break
        assert execution is not None
        outcome.partial = outcome.status != TaskStatus.COMPLETED
        if outcome.status == TaskStatus.COMPLETED:
            outcome.verifier = await self.verify(execution, options)
            outcome.success = outcome.verifier.passed if outcome.verifier else True
        outcome.metrics = {"chain": chain.model_dump(mode="json")}
        example = await self.finalize(execution, outcome, session.get("control"))
        return SessionResult(execution, outcome, example, done.result_text if done else "")


def _interrupted(step: ChainStep, exc: BaseException, session: dict[str, Any]) -> Outcome:
    control: SessionControl | None = session.get("control")
    if control is not None and control.stopping is not None:
        return control.stopping
    status = TaskStatus.CANCELLED if isinstance(exc, asyncio.CancelledError) else TaskStatus.FAILED
    return Outcome(status, error=f"step {step.name!r}: {describe(exc)}", partial=True)
