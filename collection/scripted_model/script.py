"""Scripts: a list of steps played one per turn, with seeded wandering, tool errors and giving up.

A script is JSON, either a list of steps or ``{"steps": [...], "variation": {...}}``:

    {"tool": "Read", "input": {"file_path": "src/calc.py"}}      relative paths -> session cwd
    {"tool": "Edit", "input": {"file_path": ..., "old_string": ..., "new_string": ...}}
    {"tool": "Bash", "input": {"command": "python -m pytest -q"}, "text": "Run the tests."}
    {"tool": "Agent", "input": {"prompt": ...}, "subagent": [steps]}   the sub-agent plays these
    {"thinking": "..."}  or  {"text": "..."}   folded into the next tool step's turn
    {"text": "Fixed it."}                      the last text is the final answer (end_turn)

``variation`` holds probabilities: ``wander`` (an extra look around before a step),
``tool_error`` (a failing Read/Edit/Bash before the real one) and ``give_up`` (stop with an
apology before the first edit). They are drawn from the session seed only, so the same seed
always plays the same steps.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any

from .request import ModelRequest
from .turns import Turn

SUBAGENT_TOOLS = ("Agent", "Task")  # the CLI's API name is Agent; older builds said Task
MUTATING_TOOLS = ("Edit", "Write", "NotebookEdit")
PATH_KEYS = ("file_path", "path", "notebook_path")
_MARKER = re.compile(r"\[scripted-subagent:([\d.]+)\]")
_LISTED_PATH = re.compile(r"^\.?/?[\w./-]+\.\w+$")

GIVE_UP_TEXTS = (
    "I wasn't able to finish this. I looked around but could not work out a safe fix.",
    "I couldn't complete the task: I'm not confident which change is needed, so I stopped.",
    "I ran out of ideas before making a fix; the task is not done.",
)


@dataclass(frozen=True)
class Step:
    """One turn of a script: a tool call (with optional text/thinking) or the final text."""

    tool: str | None = None
    input: Mapping[str, Any] = field(default_factory=dict)
    text: str | None = None
    thinking: str | None = None
    subagent: Script | None = None
    key: str = ""  # position in the script; names the sub-agent a step starts
    kind: str = "step"  # step | wander | error | give_up


@dataclass(frozen=True)
class Script:
    steps: tuple[Step, ...]  # tool steps, then exactly one final text step
    wander: float = 0.0
    tool_error: float = 0.0
    give_up: float = 0.0

    def subagent_script(self, key: str) -> Script:
        """The script of the sub-agent started by step ``key`` ("2", or "2.0" when nested)."""
        script: Script = self
        for index in key.split("."):
            child = script.steps[int(index)].subagent
            if child is None:
                raise ValueError(f"script step {key} starts no sub-agent")
            script = child
        return script


def _join(*parts: str | None) -> str | None:
    return "\n\n".join(p for p in parts if p) or None


def parse_script(data: Any, prefix: str = "") -> Script:
    """Validate script JSON and fold standalone text/thinking into the next tool step."""
    raw_steps, variation = (
        (data, {}) if isinstance(data, list) else (data["steps"], data.get("variation") or {})
    )
    if unknown_knobs := set(variation) - {"wander", "tool_error", "give_up"}:
        raise ValueError(f"unknown script variation knobs: {sorted(unknown_knobs)}")
    steps: list[Step] = []
    text = thinking = None
    for raw in raw_steps:
        unknown = set(raw) - {"tool", "input", "text", "thinking", "subagent"}
        if unknown:
            raise ValueError(f"unknown script step keys: {sorted(unknown)}")
        text, thinking = _join(text, raw.get("text")), _join(thinking, raw.get("thinking"))
        if "tool" not in raw:
            continue
        key = f"{prefix}{len(steps)}"
        child = parse_script(raw["subagent"], f"{key}.") if "subagent" in raw else None
        steps.append(Step(raw["tool"], dict(raw.get("input") or {}), text, thinking, child, key))
        text = thinking = None
    steps.append(Step(text=text or "Done.", thinking=thinking, key=f"{prefix}{len(steps)}"))
    return Script(tuple(steps), **{k: float(v) for k, v in variation.items()})


def subagent_key(request: ModelRequest) -> str | None:
    """The marker a scripted coordinator put in a sub-agent's prompt, if this is one."""
    match = _MARKER.search(request.first_user_text)
    return match.group(1) if match else None


def plan(script: Script, seed: str) -> list[Step]:
    """The steps this seed plays, one per turn, variation included."""
    rng = random.Random(f"{seed}:plan")
    tool_steps = list(script.steps[:-1])
    final = script.steps[-1]
    first_edit = next(
        (i for i, s in enumerate(tool_steps) if s.tool in MUTATING_TOOLS), len(tool_steps)
    )
    if rng.random() < script.give_up:
        tool_steps = tool_steps[: rng.randint(min(1, first_edit), first_edit)]
        final = Step(text=rng.choice(GIVE_UP_TEXTS), kind="give_up")
    played: list[Step] = []
    for step in tool_steps:
        if rng.random() < script.wander:
            played.append(Step(tool=rng.choice(("list", "search", "read")), kind="wander"))
        if step.tool in ("Read", "Edit", "Bash") and rng.random() < script.tool_error:
            played.append(_broken(step))
            step = replace(step, text=None, thinking=None)  # the retry needs no new preamble
        played.append(step)
    return [*played, final]


def _broken(step: Step) -> Step:
    """A plausible mistake before the real step: wrong path, stale text, mistyped command."""
    tool_input = dict(step.input)
    if step.tool == "Read":
        path = PurePosixPath(tool_input["file_path"])
        tool_input["file_path"] = str(path.with_name(f"{path.stem}_old{path.suffix}"))
    elif step.tool == "Edit":
        tool_input["old_string"] = tool_input["old_string"].rstrip() + "  # (stale copy)"
    else:
        word, _, rest = tool_input["command"].partition(" ")
        typo = word[0] + word[2] + word[1] + word[3:] if len(word) > 3 else f"x{word}"
        tool_input["command"] = f"{typo} {rest}".strip()
    return replace(step, input=tool_input, subagent=None, kind="error")


def render(step: Step, request: ModelRequest, rng: random.Random) -> Turn:
    """Turn a planned step into content blocks for this request."""
    if step.tool is None:
        return Turn.text(step.text or "Done.", thinking=step.thinking)
    if step.kind == "wander":
        name, tool_input = _wander(step.tool, request, rng)
        return Turn.tool(request.block_id("toolu"), name, tool_input)
    name, tool_input = _resolve(step, request)
    return Turn.tool(
        request.block_id("toolu"), name, tool_input, text=step.text, thinking=step.thinking
    )


def _resolve(step: Step, request: ModelRequest) -> tuple[str, dict[str, Any]]:
    tool_input = {k: _fill(v, request.cwd) for k, v in step.input.items()}
    for key in PATH_KEYS:
        if isinstance(tool_input.get(key), str):
            tool_input[key] = str(PurePosixPath(request.cwd, tool_input[key]))
    name = step.tool or ""
    if name in SUBAGENT_TOOLS:
        name = next((t for t in SUBAGENT_TOOLS if t in request.tool_names), name)
        tool_input.setdefault("description", "Scripted sub-task")
        tool_input.setdefault("prompt", "Look at the workspace and report back.")
        tool_input.setdefault("run_in_background", False)  # the coordinator waits for the report
        tool_input["prompt"] += f"\n\n[scripted-subagent:{step.key}]"
    return name, tool_input


def _fill(value: Any, cwd: str) -> Any:
    return value.replace("{cwd}", cwd) if isinstance(value, str) else value


def _wander(kind: str, request: ModelRequest, rng: random.Random) -> tuple[str, dict[str, Any]]:
    """An extra look around: list files, search for a word, or read a file seen earlier."""
    tools = request.tool_names
    if kind == "read" and (seen := _listed_paths(request)) and "Read" in tools:
        return "Read", {"file_path": str(PurePosixPath(request.cwd, rng.choice(seen)))}
    if kind == "search":
        word = rng.choice(("TODO", "def ", "import", "test", "return"))
        if "Grep" in tools:
            return "Grep", {"pattern": word}
        return "Bash", {
            "command": f"grep -rn '{word}' . | head -20",
            "description": "Search the workspace",
        }
    if "Glob" in tools:
        return "Glob", {"pattern": rng.choice(("**/*", "**/*.py", "*"))}
    return "Bash", {
        "command": "find . -type f -not -path '*/.*' | head -50",
        "description": "List workspace files",
    }


def _listed_paths(request: ModelRequest) -> list[str]:
    lines = (line.strip() for text, _ in request.tool_results() for line in text.splitlines())
    return sorted({line for line in lines if _LISTED_PATH.match(line)})
