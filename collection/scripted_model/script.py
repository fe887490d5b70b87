"""Scripts: a list of steps played one per turn, with seeded wandering, tool errors and giving up.

A script is JSON, either a list of steps or ``{"steps": [...], "variation": {...}}``:

    {"tool": "Read", "input": {"file_path": "src/calc.py"}}      relative paths -> session cwd
    {"tool": "Edit", "input": {"file_path": ..., "old_string": ..., "new_string": ...}}
    {"tool": "Bash", "input": {"command": "python -m pytest -q"}, "text": "Run the tests."}
    {"tool": "Agent", "input": {"prompt": ...}, "subagent": [steps]}   the sub-agent plays these
    {"thinking": "..."}  or  {"text": "..."}   folded into the next tool step's turn
    {"text": "Fixed it."}                      the last text is the final answer (end_turn)

``variation`` holds probabilities: ``wander`` (an extra look around before a step),
``tool_error`` (a failing Read/Edit/Bash before the real one), ``give_up`` (stop with an
apology before the first edit), ``redundant`` (read a file or run a command twice) and
``explore`` (look around at length, 3 to 10 extra turns, before starting the work: thorough
agents and lost ones both do). They are drawn from the session's seed and script only
(``session_salt``), so the same session always plays the same steps, and sessions of
different scripts that share a seed (a batch's templates do) draw apart.

``outcome`` (default ``success``) is how the session ends, played as real tool calls; whether
it succeeded is still decided by the task's verifier afterwards, never by this field:

    wrong_fix   a near miss: the last fix gets a plausible wrong change (``+ 1`` for ``- 1``,
                ``<`` for ``<=``, ``or`` for ``and``...) on a line the fix changes
    partial     only the first half of the edits, then the usual closing words
    give_up     stop with an apology before the first edit (or delegation)
    loop        the same failing Edit/Bash again and again, then give up
    max_turns   explore without end, until the CLI's max_turns stops the session
    budget      the same, until the session's cost budget (max_cost_usd) stops it
"""

from __future__ import annotations

import hashlib
import json
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
WORK_TOOLS = (*MUTATING_TOOLS, *SUBAGENT_TOOLS)  # a delegation does the coordinator's edits
KNOBS = ("wander", "tool_error", "give_up", "redundant", "explore")
FAILURE_MODES = ("wrong_fix", "partial", "give_up", "loop", "max_turns", "budget")
OUTCOMES = ("success", *FAILURE_MODES)
# Near misses for wrong_fix, strongest first, tried on the code lines a fix changes: the kind
# of slip (off by one, a flipped test, a negation, a boundary) that reads as right.
NEAR_MISSES = tuple(
    (re.compile(pattern), wrong)
    for pattern, wrong in (
        (r" - 1\b", " + 1"),
        (r" \+ 1\b", " - 1"),
        (r"==", "!="),
        (r"!=", "=="),
        (r"\bassertTrue\b", "assertFalse"),
        (r"\bassertFalse\b", "assertTrue"),
        (r"\bnot ", ""),
        (r" and ", " or "),
        (r" or ", " and "),
        (r"\bTrue\b", "False"),
        (r"\bFalse\b", "True"),
        (r"<=", "<"),
        (r">=", ">"),
        (r" < ", " <= "),
        (r" > ", " >= "),
    )
)
PROSE_SUFFIXES = (".md", ".txt", ".rst")
PATH_KEYS = ("file_path", "path", "notebook_path")
_MARKER = re.compile(r"\[scripted-subagent:([\d.]+)\]")
_LISTED_PATH = re.compile(r"^\.?/?[\w./-]+\.\w+$")

GIVE_UP_TEXTS = (
    "I wasn't able to finish this. I looked around but could not work out a safe fix.",
    "I couldn't complete the task: I'm not confident which change is needed, so I stopped.",
    "I ran out of ideas before making a fix; the task is not done.",
)
LOOP_TEXTS = (
    "Let me try that again.",
    "That failed; trying once more.",
    "Same error. One more attempt.",
)
STUCK_TEXTS = (
    "I keep getting the same error and can't get past it, so I'm stopping without a fix.",
    "The same call fails every time; I could not make progress and the task is not done.",
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
    kind: str = "step"  # step | wander | error | give_up | redundant | explore | stuck


@dataclass(frozen=True)
class Script:
    steps: tuple[Step, ...]  # tool steps, then exactly one final text step
    wander: float = 0.0
    tool_error: float = 0.0
    give_up: float = 0.0
    redundant: float = 0.0
    explore: float = 0.0
    outcome: str = "success"

    @property
    def tool_steps(self) -> list[Step]:
        return list(self.steps[:-1])

    def supported_outcomes(self) -> tuple[str, ...]:
        """The outcomes this script can play: wrong_fix needs a fix with a line to slip on,
        partial at least two edits."""
        edits = [s for s in self.tool_steps if s.tool in MUTATING_TOOLS]
        unsupported = set()
        if not any(_near_misses(s) for s in edits):
            unsupported.add("wrong_fix")
        if len(edits) < 2:
            unsupported.add("partial")
        return tuple(o for o in OUTCOMES if o not in unsupported)

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
    outcome = "success" if isinstance(data, list) else data.get("outcome") or "success"
    if unknown_knobs := set(variation) - set(KNOBS):
        raise ValueError(f"unknown script variation knobs: {sorted(unknown_knobs)}")
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown script outcome {outcome!r}; known: {list(OUTCOMES)}")
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
    knobs = {k: float(v) for k, v in variation.items()}
    return Script(tuple(steps), outcome=outcome, **knobs)


def subagent_key(request: ModelRequest) -> str | None:
    """The marker a scripted coordinator put in a sub-agent's prompt, if this is one."""
    match = _MARKER.search(request.first_user_text)
    return match.group(1) if match else None


def session_salt(seed: int, script_data: Any) -> str:
    """What a session's draws are seeded with: its seed and its script (the JSON data).

    A batch hands the same few seeds to every template (the calibration, too, keys an outcome
    by template and seed): by the seed alone, all of a batch's sessions would wander, err and
    explore alike, and one unlucky batch seed would leave no efficient session at all.
    """
    text = json.dumps(_portable(script_data), sort_keys=True, separators=(",", ":"), default=str)
    return f"{seed}:{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def _portable(value: Any) -> Any:
    """The script without its commands: a worker fills this machine's paths into those
    ({python}, {workspace}), and a session replays alike on every machine."""
    if isinstance(value, Mapping):
        return {k: _portable(v) for k, v in value.items() if k != "command"}
    if isinstance(value, list):
        return [_portable(v) for v in value]
    return value


def plan(script: Script, seed: str) -> list[Step]:
    """The steps this seed plays, one per turn, outcome and variation included.

    The policy plays the last step again once the list runs out: for max_turns and budget
    that is an endless look around, which the CLI's limits end.
    """
    rng = random.Random(f"{seed}:plan")
    tool_steps, final = script.tool_steps, script.steps[-1]
    first_work = next(
        (i for i, s in enumerate(tool_steps) if s.tool in WORK_TOOLS), len(tool_steps)
    )
    outcome = script.outcome
    if rng.random() < script.give_up and outcome == "success":
        outcome = "give_up"
    tail: list[Step] = []
    if outcome == "give_up":
        tool_steps = tool_steps[: rng.randint(min(1, first_work), first_work)]
        final = Step(text=rng.choice(GIVE_UP_TEXTS), kind="give_up")
    elif outcome == "wrong_fix":
        tool_steps = _wrong_fix(tool_steps)
    elif outcome == "partial":
        tool_steps = _partial(tool_steps)
    elif outcome == "loop":
        tool_steps, tail = tool_steps[:first_work], _loop(script.tool_steps, first_work, rng)
        final = Step(text=rng.choice(STUCK_TEXTS), kind="stuck")
    elif outcome in ("max_turns", "budget"):
        tool_steps = tool_steps[:first_work]
        final = Step(tool="explore", text="Let me look around some more.", kind="explore")
    # Drawn only when the knob is set, so older seeds keep their plans.
    if script.explore and rng.random() < script.explore:
        at = min(first_work, len(tool_steps))
        looks = [
            Step(tool=rng.choice(("list", "search", "read")), kind="wander")
            for _ in range(rng.randint(3, 10))
        ]
        tool_steps = [*tool_steps[:at], *looks, *tool_steps[at:]]
    return [*_with_noise(tool_steps, script, rng), *tail, final]


def _with_noise(tool_steps: list[Step], script: Script, rng: random.Random) -> list[Step]:
    """Wandering, tool errors and redundant calls around the steps, as the knobs say."""
    played: list[Step] = []
    for step in tool_steps:
        if rng.random() < script.wander:
            played.append(Step(tool=rng.choice(("list", "search", "read")), kind="wander"))
        if step.tool in ("Read", "Edit", "Bash") and rng.random() < script.tool_error:
            played.append(_broken(step))
            step = replace(step, text=None, thinking=None)  # the retry needs no new preamble
        played.append(step)
        # Drawn only when the knob is set, so older seeds keep their plans.
        if script.redundant and step.tool in ("Read", "Bash") and rng.random() < script.redundant:
            played.append(replace(step, text=None, thinking=None, kind="redundant"))
    return played


def _wrong_fix(tool_steps: list[Step]) -> list[Step]:
    """The script with one edit replaced by its near miss: the strongest slip on offer, in
    the latest edit that has it."""
    slips = {i: _near_misses(s) for i, s in enumerate(tool_steps) if s.tool in MUTATING_TOOLS}
    for rank in range(len(NEAR_MISSES)):
        for i in sorted(slips, reverse=True):
            if slip := slips[i].get(rank):
                return [*tool_steps[:i], slip, *tool_steps[i + 1 :]]
    return tool_steps


def _near_misses(step: Step) -> dict[int, Step]:
    """The edit with one slip, by the slip's rank in NEAR_MISSES, on the first code line (not
    prose, comment or docstring) the edit changes that has it."""
    key = "new_string" if step.tool == "Edit" else "content"
    new, old = step.input.get(key), step.input.get("old_string", "")
    path = str(step.input.get("file_path", ""))
    if not isinstance(new, str) or path.endswith(PROSE_SUFFIXES):
        return {}
    lines = new.splitlines(keepends=True)
    before = set(old.splitlines(keepends=True)) if isinstance(old, str) else set()
    found: dict[int, Step] = {}
    for n, line in enumerate(lines):
        code = line.strip()
        if line in before or code.startswith(("#", '"""', "'''")):
            continue
        for rank, (right, wrong) in enumerate(NEAR_MISSES):
            if right.search(line) and rank not in found:
                slipped = [*lines[:n], right.sub(wrong, line, count=1), *lines[n + 1 :]]
                tool_input = {**step.input, key: "".join(slipped)}
                found[rank] = replace(step, input=tool_input, kind="wrong")
    return found


def _partial(tool_steps: list[Step]) -> list[Step]:
    """Only the first half of the edits (at least one); everything else as scripted."""
    edits = [i for i, s in enumerate(tool_steps) if s.tool in MUTATING_TOOLS]
    dropped = set(edits[max(1, len(edits) // 2) :])
    return [s for i, s in enumerate(tool_steps) if i not in dropped]


def _loop(tool_steps: list[Step], first_work: int, rng: random.Random) -> list[Step]:
    """The same failing call three to five times: the first edit (if that is the first piece
    of work), else the first command or read."""
    candidates = tool_steps[first_work : first_work + 1] if first_work < len(tool_steps) else []
    candidates = [s for s in candidates if s.tool == "Edit"] or [
        s for s in tool_steps if s.tool in ("Bash", "Read")
    ]
    if not candidates:
        return []
    broken = _broken(candidates[0])
    return [
        replace(broken, text=rng.choice(LOOP_TEXTS) if n else None)
        for n in range(rng.randint(3, 5))
    ]


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
    if step.kind in ("wander", "explore"):
        kind = step.tool if step.kind == "wander" else rng.choice(("list", "search", "read"))
        name, tool_input = _wander(kind, request, rng)
        return Turn.tool(request.block_id("toolu"), name, tool_input, text=step.text)
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
