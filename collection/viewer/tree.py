"""The trajectory as a typed tree: threads of turns and notes; turns of steps; steps of
blocks; tool cards, which may hold a sub-agent's thread."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils.safestring import SafeString

from collection.models import Execution, Source, StepMark
from collection.viewer.render import DiffLine, Preview

PROMPT_CHARS = 20_000


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def compact(n: int) -> str:
    """A token count people can read at a glance: 950, 17.9k, 1.2M."""
    if n < 1000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1000:.1f}k"
    return f"{n / 1_000_000:.1f}M"


def short(value: Any, limit: int = 200) -> str:
    """A value on one line, cut at `limit` characters."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text[:limit] + ("…" if len(text) > limit else "")


@dataclass
class Usage:
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_creation: int = 0

    @classmethod
    def of(cls, usage: dict[str, Any]) -> Usage:
        return cls(
            _int(usage.get("input_tokens")),
            _int(usage.get("output_tokens")),
            _int(usage.get("cache_read_input_tokens")),
            _int(usage.get("cache_creation_input_tokens")),
        )

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_read + self.cache_creation

    @property
    def label(self) -> str:
        """ "in 3 · out 27 · cache 17.9k read, 7.9k written", for a turn's header."""
        text = f"in {compact(self.input)} · out {compact(self.output)}"
        if self.cache_read or self.cache_creation:
            read, written = compact(self.cache_read), compact(self.cache_creation)
            text += f" · cache {read} read, {written} written"
        return text

    def add(self, other: Usage) -> None:
        self.input += other.input
        self.output += other.output
        self.cache_read += other.cache_read
        self.cache_creation += other.cache_creation


@dataclass
class Todo:
    content: str
    status: str


@dataclass
class ToolCard:
    pk: int | None
    tool_use_id: str
    name: str
    card: str
    key_arg: str
    tool_input: dict[str, Any]
    answered: bool = False
    answered_in: int | None = None  # the message holding the result
    is_error: bool = False
    exit_status: int | None = None
    output: Preview | None = None
    diff: list[DiffLine] = field(default_factory=list)
    diff_cut: bool = False  # whether rows were left out
    file_html: SafeString | None = None
    file_cut: bool = False
    todos: list[Todo] = field(default_factory=list)
    subagent: Thread | None = None
    error_anchor: str = ""
    next_error: str = ""
    subagent_anchor: str = ""
    next_subagent: str = ""
    output_url: str = ""  # the whole output (and, with ?part=input, the whole diff or file)
    answer_raw_url: str = ""  # the raw JSON of the message holding the result

    @property
    def description(self) -> str:
        return str(self.tool_input.get("description") or "")

    @property
    def subagent_type(self) -> str:
        return str(self.tool_input.get("subagent_type") or "")

    @property
    def prompt(self) -> str:
        return str(self.tool_input.get("prompt") or "")[:PROMPT_CHARS]

    @property
    def long_command(self) -> str:
        """The whole command, when the headline can't show all of it."""
        command = self.tool_input.get("command")
        if isinstance(command, str) and ("\n" in command.strip() or len(command) > 300):
            return command
        return ""

    @property
    def other_args(self) -> list[tuple[str, str]]:
        """The input's other arguments, one short line each, for generic cards."""
        shown = {"command", "description", "file_path", "prompt", "content", "todos"}
        args = [(k, short(v)) for k, v in self.tool_input.items() if k not in shown]
        return [(k, v) for k, v in args if v != self.key_arg][:8]


@dataclass
class Block:
    kind: str  # "text", "thinking" or "tool"
    html: SafeString | None = None
    text: str = ""
    card: ToolCard | None = None

    @property
    def gist(self) -> str:
        return short(self.text, 110)


@dataclass
class Step:
    """One stored assistant message: what a reviewer marks."""

    message_id: int
    seq: int
    blocks: list[Block]
    mark: StepMark | None = None
    raw_url: str = ""


@dataclass
class Turn:
    """One model response: one or more steps sharing a response id."""

    number: int
    response_id: str
    steps: list[Step] = field(default_factory=list)
    model: str = ""
    usage: Usage = field(default_factory=Usage)
    cost: float | None = None
    cost_estimated: bool = False
    started: datetime | None = None
    ended: datetime | None = None
    kind: str = "turn"

    @property
    def duration_s(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return max((self.ended - self.started).total_seconds(), 0.0)

    @property
    def duration_label(self) -> str:
        seconds = self.duration_s
        if seconds is None:
            return ""
        if seconds < 60:
            return f"{seconds:.1f} s"
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"


@dataclass
class Note:
    """A line between turns: the prompt, the init line, a system notice, the result."""

    kind: str  # "prompt", "init", "system", "result", "aux", "orphan"
    message_id: int | None
    seq: int
    text: str = ""
    html: SafeString | None = None
    aux: list[AuxLine] = field(default_factory=list)
    output: Preview | None = None
    thread: Thread | None = None
    raw_url: str = ""


@dataclass
class AuxLine:
    """A bookkeeping line (hook progress, file snapshot...): listed with its raw JSON link."""

    pk: int
    seq: int
    kind: str
    raw_url: str = ""


@dataclass
class Thread:
    """A conversation: the main agent's, or one sub-agent's."""

    items: list[Turn | Note] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    turns: int = 0


@dataclass
class Trajectory:
    execution: Execution
    thread: Thread
    init_line: str = ""
    result_subtype: str = ""
    tool_calls: int = 0
    tool_errors: int = 0
    first_error: str = ""
    subagents: int = 0
    first_subagent: str = ""
    messages: int = 0

    @property
    def verifier(self) -> dict[str, Any]:
        found = self.execution.performance_metrics.get("verifier")
        return found if isinstance(found, dict) else {}

    @property
    def ended_because(self) -> str:
        """Why the session ended, in a few words."""
        ex = self.execution
        if ex.status in ("pending", "in_progress"):
            return "still running" if ex.status == "in_progress" else "not started"
        parts = [str(ex.get_status_display()).lower()]
        if self.result_subtype:
            parts.append(f"result: {self.result_subtype}")
        elif ex.source != Source.IMPORTED:
            parts.append("no result message")
        if ex.is_partial:
            parts.append("partial trajectory")
        if ex.performance_metrics.get("infrastructure_failure"):
            parts.append("infrastructure failure")
        return " · ".join(parts)
