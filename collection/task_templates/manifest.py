"""A template's manifest: the Pydantic model of `manifest.json`, and the error it raises.

    {
      "name": "fix_failing_median",            slug, equal to the template's folder name
      "title": "...", "description": "...",
      "category": "debugging",               one of the six, equal to the parent folder name
      "difficulty": "easy",                  easy | medium | hard | expert
      "required_tools": ["Read", "Edit", "Bash"],
      "expected_outcomes": ["..."], "constraints": ["..."],
      "prompt": "what the agent is asked",
      "verifier": "{python} test_stats.py",   exit 0 == success, run in the sandbox afterwards
      "script": [ {"tool": "Read", "input": {"file_path": "stats.py"}}, ..., {"text": "..."} ],
      "variation": {"wander": 0.05, "tool_error": 0.05, "redundant": 0.1},   optional
      "max_turns": 30, "timeout_s": 300,
      "agents": {"reviewer": {"description": "...", "prompt": "...", "tools": ["Read"]}},
      "chain": [ {"name": "identify", "prompt": "...", "extra": {"script": [...]}}, ... ]
    }

In `verifier` and in the `command` of Bash steps, `{python}` stands for this interpreter and
`{checks}` for the template's `checks/` folder (hidden checks the agent never sees).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from collection.models import SLUG_PATTERN, Difficulty
from collection.sessions.chains import ChainStep

CATEGORIES = (
    "code_review",
    "debugging",
    "refactoring",
    "implementation",
    "testing",
    "multi_agent",
)


class TemplateError(ValueError):
    """A template is malformed or cannot be added. The message names the file and the field."""

    def __init__(self, message: str, *, file: Path | str = "", field: str = "") -> None:
        self.file, self.field, self.problem = str(file), field, message
        where = ": ".join(part for part in (self.file, field) if part)
        super().__init__(f"{where}: {message}" if where else message)


class Variation(BaseModel):
    """The scripted model's knobs: chances to wander, make a tool error, give up, or read a
    file (run a command) twice. How often a session fails is the calibration's business
    (collection/calibration.py); `give_up` here only plays when a caller sets the knobs."""

    model_config = ConfigDict(extra="forbid")

    wander: float = Field(default=0.0, ge=0, le=1)
    tool_error: float = Field(default=0.0, ge=0, le=1)
    give_up: float = Field(default=0.0, ge=0, le=1)
    redundant: float = Field(default=0.0, ge=0, le=1)
    explore: float = Field(default=0.0, ge=0, le=1)


# Harder templates play worse on average, so a batch holds a real spread of quality.
DEFAULT_VARIATION = {
    Difficulty.EASY: Variation(
        wander=0.05, tool_error=0.05, give_up=0.03, redundant=0.10, explore=0.25
    ),
    Difficulty.MEDIUM: Variation(
        wander=0.10, tool_error=0.10, give_up=0.06, redundant=0.15, explore=0.35
    ),
    Difficulty.HARD: Variation(
        wander=0.20, tool_error=0.15, give_up=0.12, redundant=0.20, explore=0.45
    ),
    Difficulty.EXPERT: Variation(
        wander=0.30, tool_error=0.25, give_up=0.20, redundant=0.25, explore=0.55
    ),
}


class ScriptStep(BaseModel):
    """One step of a scripted policy (see collection/scripted_model/script.py)."""

    model_config = ConfigDict(extra="forbid")

    tool: str | None = None
    input: dict[str, Any] = Field(default_factory=dict)
    text: str | None = None
    thinking: str | None = None
    subagent: list[ScriptStep] | None = None


class AgentManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field(min_length=1)
    prompt: str = Field(min_length=1)
    tools: list[str] | None = None
    model: str | None = None


class TemplateManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=SLUG_PATTERN, max_length=100)
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1)
    category: str = Field(pattern=SLUG_PATTERN)
    difficulty: Difficulty
    required_tools: list[str] = Field(min_length=1)
    expected_outcomes: list[str] = Field(min_length=1)
    constraints: list[str] = Field(default_factory=list)
    prompt: str = Field(min_length=1)
    verifier: str = Field(min_length=1)
    script: list[ScriptStep] | None = None
    variation: Variation | None = None
    max_turns: int = Field(default=30, ge=1, le=500)
    timeout_s: float = Field(default=300, gt=0, le=3600)
    agents: dict[str, AgentManifest] | None = None
    chain: list[ChainStep] | None = None


def field_name(loc: tuple[Any, ...]) -> str:
    """Pydantic's error location as a path: ("chain", 0, "extra") -> "chain[0].extra"."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def errors_from(exc: ValidationError, file: Path) -> list[TemplateError]:
    return [
        TemplateError(err["msg"], file=file, field=field_name(tuple(err["loc"])) or "(root)")
        for err in exc.errors()
    ]
