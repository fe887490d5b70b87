"""What a session (or chain, or multi-agent session) is asked to run: the spec a collection
job stores as JSON, validated at the edges.

Here, below both, so that the template library builds specs and the job runner runs them
without either importing the other.

A template's job stores a reference to its template (`TemplateRef`) and the template's commands
with their placeholders ({python}, {checks}, {workspace}) unfilled: the worker that runs the job,
on whatever machine, fills them with its own paths right before the session starts
(`collection.task_templates.resolve_spec`, called by the job's collector). A job stored with
absolute paths (before references) runs as it is.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from collection.models import Source
from collection.sessions.chains import ConversationChain


class SubagentSpec(BaseModel):
    description: str
    prompt: str
    tools: list[str] | None = None
    model: str | None = None


class TemplateRef(BaseModel):
    """Which template a job runs: a built-in one by name, an uploaded one by name and the
    sha256 of its stored archive, or (neither) one of the worker's own template folders."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    builtin: bool = False
    digest: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class JobSpec(BaseModel):
    """What a collection job runs. Stored as JSON on the job; no secrets in here."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1)
    allowed_tools: list[str] = Field(default_factory=list)
    max_turns: int | None = Field(default=30, ge=1)
    model: str | None = None
    backend: Literal["scripted", "claude"] = "scripted"
    policy: str = "script"
    seed: int = 0
    script: Any = None
    workspace: str | None = Field(default=None, description="directory copied as the sandbox")
    template: TemplateRef | None = Field(default=None, description="the template's files")
    timeout_s: float = Field(default=600, gt=0)
    max_cost_usd: float | None = Field(default=None, gt=0)
    verifier: str | None = None
    chain: ConversationChain | None = None
    agents: dict[str, SubagentSpec] | None = None

    @property
    def source(self) -> str:
        """Where the session's data comes from, decided here once: the backend chosen."""
        return Source.SCRIPTED if self.backend == "scripted" else Source.CLAUDE
