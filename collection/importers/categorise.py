"""What an imported session was about, read from what it did: category, difficulty, signals.

    found = categorise(prompt, calls, turns=12)     # calls: ToolUse(name, input, is_error)
    found.category, found.difficulty, found.signals  # "debugging", "medium", {...}

The rule (first that applies):

1. **multi_agent** when the session delegated: any `Task` or `Agent` tool call.
2. Otherwise each of debugging, testing, refactoring, code_review and implementation scores
   2 points per distinct word of its own in the prompt ("fix", "bug", "traceback" → debugging;
   "test", "coverage" → testing; "refactor", "rename" → refactoring; "review", "pull request"
   → code_review; "implement", "add", "create" → implementation) and 1 point per tool signal:
   a test command run (pytest, go test, npm test, …) → testing, a failing test run → debugging,
   a test file edited → testing, any file edited → implementation, files only read → code_review.
   The highest score wins; ties go to the earlier category in that list (the more specific one).
3. **imported** when there is no evidence at all (no prompt words, no tool use).

Difficulty is the middle one of three levels, one each from the turns, the tool calls and
the files touched (thresholds in `LEVELS`), so a single outlier (a long chat, one huge grep)
doesn't decide it alone.

Signals kept with it: languages (from the extensions of the files touched), tools used, files
touched, files edited, test commands run. A reviewer overrides the result on the task's edit page;
re-importing never overwrites a category a person chose (see `closing`).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from collection.models import Category, Difficulty

# Tools that start a sub-agent (Claude Code renamed Task to Agent).
DELEGATING_TOOLS = {"Task", "Agent"}
# Tool-input keys that name a file, across Claude Code, SWE-agent, OpenHands and Codex tools.
PATH_KEYS = ("file_path", "path", "notebook_path", "filename", "file")
COMMAND_KEYS = ("command", "cmd")
# Edit tools by name, and editor commands that write (SWE-agent/OpenHands str_replace_editor).
EDIT_TOOLS = re.compile(r"edit|write|patch|create|replace|insert", re.I)
# Tools whose path is a folder to search, not a file touched.
SEARCH_TOOLS = re.compile(r"glob|grep|search|find|^ls$|list", re.I)
EDIT_COMMANDS = {"create", "str_replace", "insert", "write", "edit", "undo_edit"}
TEST_COMMAND = re.compile(
    r"\b(pytest|py\.test|unittest|tox|nox|go test|cargo test|npm (run )?test|yarn test|"
    r"pnpm test|jest|vitest|mocha|rspec|phpunit|mvn test|gradle test|ctest|make test|"
    r"manage\.py test)\b"
)
TEST_FILE = re.compile(r"(^|/)(tests?/|test_[^/]+$|[^/]+_test\.\w+$|[^/]+\.(test|spec)\.\w+$)")

# Prompt words per category, in tie-break order (the more specific category first).
PROMPT_WORDS: dict[str, tuple[str, ...]] = {
    Category.DEBUGGING: (
        "fix", "bug", "error", "fails", "failing", "failure", "crash", "broken", "debug",
        "traceback", "exception", "regression", "wrong", "issue", "doesnt", "didnt", "cant",
        "wont", "not working", "problem",
    ),
    Category.TESTING: ("test", "tests", "coverage", "unit test", "spec", "pytest"),
    Category.REFACTORING: (
        "refactor", "rename", "clean up", "cleanup", "simplify", "extract", "restructure",
        "reorganize", "reorganise", "deduplicate", "move",
    ),
    Category.CODE_REVIEW: (
        "review", "pull request", "pr", "audit", "feedback", "explain", "look over",
    ),
    Category.IMPLEMENTATION: (
        "implement", "add", "create", "build", "write", "support", "feature", "new",
    ),
}  # fmt: skip

LANGUAGES = {
    ".py": "Python", ".pyi": "Python", ".ipynb": "Python", ".js": "JavaScript",
    ".jsx": "JavaScript", ".mjs": "JavaScript", ".cjs": "JavaScript", ".ts": "TypeScript",
    ".tsx": "TypeScript", ".go": "Go", ".rs": "Rust", ".java": "Java", ".kt": "Kotlin",
    ".rb": "Ruby", ".php": "PHP", ".c": "C", ".h": "C", ".cc": "C++", ".cpp": "C++",
    ".hpp": "C++", ".cs": "C#", ".swift": "Swift", ".scala": "Scala", ".sh": "Shell",
    ".bash": "Shell", ".sql": "SQL", ".html": "HTML", ".css": "CSS", ".scss": "CSS",
    ".gleam": "Gleam", ".ex": "Elixir", ".exs": "Elixir", ".erl": "Erlang", ".lua": "Lua",
    ".r": "R", ".jl": "Julia", ".dart": "Dart", ".vue": "Vue", ".svelte": "Svelte",
    ".md": "Markdown", ".toml": "TOML", ".yaml": "YAML", ".yml": "YAML", ".json": "JSON",
}  # fmt: skip

# Upper bounds of easy, medium and hard per measure; above the last is expert.
LEVELS = {"turns": (5, 20, 60), "tool_calls": (5, 25, 80), "files": (2, 6, 20)}
DIFFICULTIES = (Difficulty.EASY, Difficulty.MEDIUM, Difficulty.HARD, Difficulty.EXPERT)


@dataclass
class ToolUse:
    name: str
    input: Any
    is_error: bool | None = None


@dataclass
class Categorisation:
    category: str
    difficulty: str
    signals: dict[str, Any] = field(default_factory=dict)


def categorise(prompt: str, calls: list[ToolUse], *, turns: int) -> Categorisation:
    """The category and difficulty of a session (the rule is in the module docstring)."""
    seen = _Seen.of(calls)
    scores = _prompt_scores(prompt) + _tool_scores(seen)
    category = _pick(scores, delegated=bool(seen.tools & DELEGATING_TOOLS))
    difficulty = _difficulty(turns=turns, tool_calls=len(calls), files=len(seen.files))
    return Categorisation(category, difficulty, seen.signals() | {"scores": dict(scores)})


@dataclass
class _Seen:
    tools: set[str] = field(default_factory=set)
    files: set[str] = field(default_factory=set)
    edited: set[str] = field(default_factory=set)
    test_runs: list[str] = field(default_factory=list)
    failed_test_runs: int = 0

    @classmethod
    def of(cls, calls: list[ToolUse]) -> _Seen:
        seen = cls()
        for call in calls:
            seen.add(call)
        return seen

    def add(self, call: ToolUse) -> None:
        self.tools.add(call.name)
        args = call.input if isinstance(call.input, dict) else {}
        path = next((args[k] for k in PATH_KEYS if isinstance(args.get(k), str)), "")
        if path and not SEARCH_TOOLS.search(call.name):
            self.files.add(path)
            if EDIT_TOOLS.search(call.name) and args.get("command", "edit") in EDIT_COMMANDS:
                self.edited.add(path)
        command = next((args[k] for k in COMMAND_KEYS if isinstance(args.get(k), str)), "")
        if command and TEST_COMMAND.search(command):
            self.test_runs.append(command[:200])
            self.failed_test_runs += bool(call.is_error)

    def signals(self) -> dict[str, Any]:
        return {
            "languages": _languages(self.files),
            "tools": sorted(self.tools),
            "files_touched": len(self.files),
            "files_edited": sorted(self.edited)[:50],
            "test_runs": len(self.test_runs),
            "multi_agent": bool(self.tools & DELEGATING_TOOLS),
        }


def _languages(files: set[str]) -> list[str]:
    # Most-touched first: the first language is the session's main one.
    counts = Counter(LANGUAGES.get(PurePosixPath(f).suffix.lower(), "") for f in files)
    counts.pop("", None)
    return [language for language, _ in counts.most_common()]


def _prompt_scores(prompt: str) -> Counter[str]:
    tokens = re.findall(r"[a-z]+", prompt.lower().replace("'", ""))
    words = set(tokens) | {f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)}
    return Counter({c: 2 * sum(w in words for w in ws) for c, ws in PROMPT_WORDS.items()})


def _tool_scores(seen: _Seen) -> Counter[str]:
    edited_tests = any(TEST_FILE.search(f) for f in seen.edited)
    return Counter(
        {
            Category.TESTING: bool(seen.test_runs) + edited_tests,
            Category.DEBUGGING: int(seen.failed_test_runs > 0),
            Category.IMPLEMENTATION: int(bool(seen.edited)),
            Category.CODE_REVIEW: int(bool(seen.files) and not seen.edited),
        }
    )


def _pick(scores: Counter[str], *, delegated: bool) -> str:
    if delegated:
        return Category.MULTI_AGENT
    best = max(scores.values(), default=0)
    if best <= 0:
        return Category.IMPORTED
    return next(c for c in PROMPT_WORDS if scores[c] == best)


def _difficulty(**measures: int) -> str:
    levels = sorted(_level(value, LEVELS[name]) for name, value in measures.items())
    return DIFFICULTIES[levels[len(levels) // 2]]


def _level(value: int, bounds: tuple[int, ...]) -> int:
    return next((i for i, bound in enumerate(bounds) if value <= bound), len(bounds))
