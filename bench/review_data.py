"""Synthetic review data for bench/review_pages.py: many examples, a tenth with trajectories.

    from review_data import populate
    world = populate(100_000, seed=1)   # after Django is set up and migrated

Every example has a task, an execution with varied model, cost, turns, dates and status, and a
`search_text` (its prompt and assistant text). A tenth also have a full trajectory of about 20
messages shaped like the CLI's stream-json (system init, prompt, assistant text / thinking /
tool_use, tool results of varied sizes, some errors, sub-agent turns under a Task call, the
result), with their tool calls paired and agent actions. Some examples are reviewed (reviewer,
notes, tags, review events) and some have bad-step marks.

Five marker examples in category `FEW_CATEGORY`, golden and validated, with 5-message
trajectories and the word `RARE_WORD` in their prompt, let a page be shown with 5 rows
(queries must not grow with rows shown). `SEARCH_WORD` is in about 3% of prompts.

Rows are written with bulk_create in chunks, each chunk in one transaction, keys taken from
what bulk_create returns (PostgreSQL and SQLite >= 3.35 both return them).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any

from django.contrib.auth.models import User
from django.db import connection, transaction

from collection.models import (
    AgentAction,
    AgentRole,
    Category,
    Difficulty,
    Execution,
    Message,
    ReviewEvent,
    Source,
    StepMark,
    Task,
    TaskStatus,
    ToolCall,
    TrainingExample,
)
from collection.roles import REVIEWER, assign_role
from collection.search import build_search_text

FEW_CATEGORY = "bench_five"
SEARCH_WORD = "flaky"
RARE_WORD = "zanzibar"
CHUNK = 2000
NOW = datetime(2026, 11, 1, tzinfo=UTC)

MODELS = [
    ("claude-sonnet-4-5-20250929", 0.45),
    ("claude-opus-4-1-20250805", 0.15),
    ("claude-haiku-4-5-20251001", 0.25),
    ("claude-sonnet-4-20250514", 0.10),
    ("scripted-1", 0.05),
]
CATEGORIES = [c.value for c in Category] + ["data_migration", "docs"]
TAGS = ["needs-look", "long", "nice-recovery", "wrong-tool", "hallucination", "flaky-verifier"]
TOOLS = ["Bash", "Read", "Edit", "Grep", "Glob", "Write", "TodoWrite", "WebFetch", "MultiEdit"]
VERBS = ["Fix", "Refactor", "Add tests for", "Speed up", "Document", "Implement", "Review"]
THINGS = [
    "the date parser",
    "the retry loop in the HTTP client",
    "the CSV exporter",
    "the login form validation",
    "the cache invalidation",
    "the migration that renames the user table",
    "the websocket reconnect logic",
    "the pagination of the search API",
    "the config loader",
    "the rate limiter",
]
GOALS = [
    "so that it handles time zones",
    "so that empty input no longer crashes",
    "and keep the public API unchanged",
    "without adding dependencies",
    "so that the nightly job stops timing out",
    "and explain what was wrong",
]
PATHS = ["src/app/models.py", "src/app/views.py", "lib/http/client.py", "tests/test_api.py"]
SENTENCES = [
    "Let me look at how {thing} is wired up first.",
    "The failure comes from an off-by-one in the loop over `items`.",
    "I'll run the test suite to see what breaks.",
    "The fix is small: guard the empty case before indexing.",
    "Now the tests pass; let me double-check the edge cases.",
    "Here is a summary of the change:\n\n- moved the check up\n- added a regression test",
    "```python\ndef parse(value: str) -> date:\n    return date.fromisoformat(value.strip())\n```",
    "I found **two** places that build the URL by hand; both now use `urljoin`.",
]
CODE_LINES = [
    "def {w}_{v}(self, {w}: int) -> None:",
    "    return self._{w}.get({v!r}, None)",
    "import {w}",
    "    if not {w}:",
    "        raise ValueError('{w} is {v}')",
    "{w} = [{v} for {v} in range(10)]",
    "FAILED tests/test_{w}.py::test_{v} - AssertionError",
    '  File "/work/repo/src/{w}.py", line 42, in {v}',
    "{w}: {v} passed in 0.42s",
    "# TODO: {w} the {v}",
]
WORDS = [
    "alpha",
    "beta",
    "cache",
    "parser",
    "client",
    "token",
    "index",
    "query",
    "buffer",
    "stream",
    "worker",
    "retry",
]


@dataclass
class World:
    """What the generator made, for the pages that need a particular row or word."""

    examples: int = 0
    trajectories: int = 0
    messages: int = 0
    tool_calls: int = 0
    seconds: float = 0.0
    full_example_pk: int = 0  # a ~20-message trajectory with a sub-agent and a tool error
    few_example_pk: int = 0  # a marker example with a 5-message trajectory
    reviewers: list[int] = field(default_factory=list)


@contextmanager
def explicit_dates(*fields: Any) -> Iterator[None]:
    """Let bulk_create keep the dates we give (auto_now_add would stamp every row "now")."""
    saved = [(f, f.auto_now, f.auto_now_add) for f in fields]
    for f in fields:
        f.auto_now = f.auto_now_add = False
    try:
        yield
    finally:
        for f, auto_now, auto_now_add in saved:
            f.auto_now, f.auto_now_add = auto_now, auto_now_add


def _date_fields() -> list[Any]:
    return [
        Execution._meta.get_field("created_at"),
        TrainingExample._meta.get_field("created_at"),
        TrainingExample._meta.get_field("updated_at"),
    ]


def populate(
    n_examples: int,
    *,
    seed: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> World:
    """Create `n_examples` examples (a tenth with trajectories) in a migrated, empty database."""
    started = time.perf_counter()
    gen = Generator(Random(seed), n_examples)
    with explicit_dates(*_date_fields()):
        gen.make_people_and_tasks()
        gen.make_few()
        done = len(gen.world_few)
        while done < n_examples:
            size = min(CHUNK, n_examples - done)
            gen.make_chunk(size)
            done += size
            if progress:
                progress(done, n_examples)
    if not gen.world.full_example_pk:  # too few examples for a showcase: any trajectory
        with_messages = TrainingExample.objects.filter(execution__messages__isnull=False)
        gen.world.full_example_pk = with_messages.values_list("pk", flat=True).first() or 0
    gen.world.examples = n_examples
    gen.world.seconds = time.perf_counter() - started
    return gen.world


class Generator:
    """Writes the examples chunk by chunk, keeping what later chunks need (tasks, keys)."""

    def __init__(self, rng: Random, n_examples: int) -> None:
        self.rng = rng
        self.n = n_examples
        self.world = World()
        self.world_few: list[int] = []
        self.tasks: list[Task] = []
        self.reviewers: list[User] = []
        self.example_pks: list[int] = []
        self.blob = _blob(rng)
        self.batch = 500 if connection.vendor == "postgresql" else None
        self.showcase_pending = True

    # --- fixed parts ---------------------------------------------------------------------

    def make_people_and_tasks(self) -> None:
        for i in range(5):
            user = User.objects.create_user(f"bench-reviewer-{i}")
            assign_role(user, REVIEWER)
            self.reviewers.append(user)
        self.world.reviewers = [u.pk for u in self.reviewers]
        n_tasks = max(50, self.n // 20)
        tasks = [self._task(i) for i in range(n_tasks)]
        with transaction.atomic():
            self.tasks = Task.objects.bulk_create(tasks, batch_size=self.batch)

    def _task(self, i: int) -> Task:
        rng = self.rng
        prompt = f"{rng.choice(VERBS)} {rng.choice(THINGS)} in {rng.choice(PATHS)} "
        prompt += rng.choice(GOALS) + "."
        if rng.random() < 0.03:
            prompt += f" The {SEARCH_WORD} test in CI keeps failing on this."
        category = rng.choice(CATEGORIES)
        return Task(
            name=f"{prompt.split(' in ')[0]} #{i}"[:200],
            description=prompt,
            category=category,
            difficulty=rng.choice(list(Difficulty)).value,
            required_tools=rng.sample(TOOLS, 3),
            expected_outcomes=["tests pass"],
            source_template=f"{category}/template-{i % 40}" if rng.random() < 0.7 else "",
        )

    def make_few(self) -> None:
        """Five golden, validated, reviewed examples with 5-message trajectories."""
        task = Task.objects.create(
            name="Marker task",
            description=f"Check the {RARE_WORD} importer and report what it does.",
            category=FEW_CATEGORY,
            difficulty=Difficulty.MEDIUM,
        )
        pks = self._write([(task, True) for _ in range(5)], few=True)
        self.world_few = pks
        self.world.few_example_pk = pks[0]

    # --- one chunk ------------------------------------------------------------------------

    def make_chunk(self, size: int) -> None:
        start = len(self.example_pks)
        # Every tenth execution has a full trajectory.
        plan = [(self.rng.choice(self.tasks), (start + i) % 10 == 0) for i in range(size)]
        self._write(plan)

    def _write(self, plan: list[tuple[Task, bool]], few: bool = False) -> list[int]:
        with transaction.atomic():
            runs = [Run(self, task, full, few) for task, full in plan]
            executions = Execution.objects.bulk_create(
                [r.execution() for r in runs], batch_size=self.batch
            )
            for run, execution in zip(runs, executions, strict=True):
                run.execution_pk = execution.pk
            self._write_trajectories([r for r in runs if r.messages])
            examples = TrainingExample.objects.bulk_create(
                [r.example() for r in runs], batch_size=self.batch
            )
            for run, example in zip(runs, examples, strict=True):
                run.example_pk = example.pk
            self._write_reviews(runs)
        pks = [r.example_pk for r in runs]
        self.example_pks += pks
        return pks

    def _write_trajectories(self, runs: list[Run]) -> None:
        messages = Message.objects.bulk_create(
            [m for r in runs for m in r.message_rows()], batch_size=self.batch
        )
        at = 0
        for run in runs:
            run.message_pks = [m.pk for m in messages[at : at + len(run.messages)]]
            at += len(run.messages)
        ToolCall.objects.bulk_create(
            [c for r in runs for c in r.tool_call_rows()], batch_size=self.batch
        )
        actions = [a for r in runs for a in r.action_rows(sub=False)]
        AgentAction.objects.bulk_create(actions, batch_size=self.batch)
        AgentAction.objects.bulk_create(
            [a for r in runs for a in r.action_rows(sub=True)], batch_size=self.batch
        )
        self.world.trajectories += len(runs)
        self.world.messages += len(messages)
        self.world.tool_calls += sum(len(r.calls) for r in runs)

    def _write_reviews(self, runs: list[Run]) -> None:
        events = [e for r in runs for e in r.review_events()]
        ReviewEvent.objects.bulk_create(events, batch_size=self.batch)
        StepMark.objects.bulk_create(
            [s for r in runs for s in r.step_marks()], batch_size=self.batch
        )
        for run in runs:
            if run.showcase:
                self.world.full_example_pk = run.example_pk


def _blob(rng: Random) -> str:
    """A few hundred KB of code- and log-like lines; tool outputs are slices of it."""
    lines = [
        rng.choice(CODE_LINES).format(w=rng.choice(WORDS), v=rng.choice(WORDS)) for _ in range(8000)
    ]
    return "\n".join(lines)


def _uuid(rng: Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _output_size(rng: Random) -> int:
    r = rng.random()
    if r < 0.65:
        return rng.randint(60, 800)
    if r < 0.95:
        return rng.randint(800, 4000)
    return rng.randint(4000, 20000)


@dataclass
class Call:
    tool_use_id: str
    name: str
    input: dict[str, Any]
    output: str
    is_error: bool
    requested: int  # index into Run.messages
    answered: int = -1
    parent: str = ""  # the Task call's tool_use_id, for sub-agent calls
    agent_id: str = "main"


class Run:
    """One execution, its example and (when `full`) its trajectory, before they are stored."""

    def __init__(self, gen: Generator, task: Task, full: bool, few: bool) -> None:
        self.gen, self.rng, self.task, self.few = gen, gen.rng, task, few
        rng = self.rng
        self.session_id = _uuid(rng)
        self.model = "claude-sonnet-4-5-20250929" if few else _weighted(rng, MODELS)
        self.completed = NOW - timedelta(seconds=rng.randint(0, 365 * 86400))
        self.status = _weighted(
            rng,
            [
                (TaskStatus.COMPLETED, 0.86),
                (TaskStatus.FAILED, 0.1),
                (TaskStatus.CANCELLED, 0.04),
            ],
        )
        self.success = self.status == TaskStatus.COMPLETED and rng.random() < 0.7
        self.messages: list[dict[str, Any]] = []
        self.calls: list[Call] = []
        self.assistant_text: list[str] = []
        self.has_subagent = self.has_error = False
        self.tokens = [0, 0, 0, 0]
        self.cost = 0.0
        self.turns = rng.randint(2, 60)
        if full:
            self._trajectory(rounds=1 if few else rng.randint(6, 10))
        else:
            self.assistant_text.append(self._text(rng.randint(1, 3)))
            self.tokens = [rng.randint(1, 5000) for _ in range(4)]
            self.cost = round(rng.lognormvariate(-2.5, 1.0), 4)
        # The one example the example page and the queue open: ~20 messages, a sub-agent and
        # a tool error; the best score, not reviewed (so first in the list and the queue).
        self.showcase = gen.showcase_pending and self.has_subagent and self.has_error
        self.showcase = self.showcase and 18 <= len(self.messages) <= 24
        gen.showcase_pending = gen.showcase_pending and not self.showcase
        self.execution_pk = self.example_pk = 0
        self.message_pks: list[int] = []
        self.main_actions: list[AgentAction] = []
        self.reviewed = False
        self.reviewer_id: int | None = None

    # --- building the trajectory -----------------------------------------------------------

    def _trajectory(self, rounds: int) -> None:
        rng = self.rng
        self.messages.append(self._init())
        self.messages.append(self._user(self.task.description))
        for i in range(rounds):
            if not self.few and not self.has_subagent and i == 2 and rng.random() < 0.3:
                self._subagent()
                continue
            self._round(parent="")
        if self.few:
            self.messages.append(self._result())  # init, prompt, call, result, result message
            self.turns = 1
            return
        text = self._text(rng.randint(1, 3))
        self.messages.append(self._assistant([{"type": "text", "text": text}], parent=""))
        self.messages.append(self._result())
        self.turns = sum(1 for m in self.messages if m["type"] == "assistant")

    def _round(self, parent: str) -> None:
        """An assistant message with text and one or two tool calls, then their results."""
        rng = self.rng
        blocks: list[dict[str, Any]] = []
        if rng.random() < 0.3:
            blocks.append({"type": "thinking", "thinking": self._text(2), "signature": "sig"})
        text = self._text(1)
        blocks.append({"type": "text", "text": text})
        new = [self._call(rng.choice(TOOLS), parent) for _ in range(1 if rng.random() < 0.8 else 2)]
        blocks += [
            {"type": "tool_use", "id": c.tool_use_id, "name": c.name, "input": c.input} for c in new
        ]
        self.messages.append(self._assistant(blocks, parent))
        self._answer(new, parent)

    def _subagent(self) -> None:
        """A Task call whose sub-agent runs two rounds before the call's result arrives."""
        task_call = self._call("Task", "")
        block = {
            "type": "tool_use",
            "id": task_call.tool_use_id,
            "name": "Task",
            "input": task_call.input,
        }
        text = {"type": "text", "text": "I'll ask a sub-agent to explore the codebase."}
        self.messages.append(self._assistant([text, block], parent=""))
        for _ in range(2):
            self._round(parent=task_call.tool_use_id)
        self._answer([task_call], parent="")
        self.has_subagent = True

    def _call(self, name: str, parent: str) -> Call:
        rng = self.rng
        path = f"/work/repo/{rng.choice(PATHS)}"
        size = _output_size(rng)
        start = rng.randint(0, len(self.gen.blob) - size - 1)
        output = self.gen.blob[start : start + size]
        inputs: dict[str, dict[str, Any]] = {
            "Bash": {"command": f"pytest -x {rng.choice(PATHS)}", "description": "Run tests"},
            "Read": {"file_path": path},
            "Edit": {"file_path": path, "old_string": output[:120], "new_string": output[40:200]},
            "MultiEdit": {"file_path": path, "edits": [{"old_string": "a", "new_string": "b"}]},
            "Write": {"file_path": path, "content": output[:2000]},
            "Grep": {"pattern": r"def \w+_cache", "path": "src", "output_mode": "content"},
            "Glob": {"pattern": "**/*.py"},
            "WebFetch": {"url": "https://docs.python.org/3/library/json.html", "prompt": "API?"},
            "TodoWrite": {
                "todos": [
                    {"content": "Reproduce", "status": "completed", "activeForm": "Reproducing"},
                    {"content": "Fix", "status": "in_progress", "activeForm": "Fixing"},
                ]
            },
            "Task": {
                "description": "Explore the code",
                "prompt": f"Find where {rng.choice(THINGS)} is defined.",
                "subagent_type": "Explore",
            },
        }
        is_error = (name == "Bash" and rng.random() < 0.25) or rng.random() < 0.03
        if is_error:
            output = "Exit code 1\n" + output[:1500]
            self.has_error = True
        if name in ("Edit", "MultiEdit", "Write", "TodoWrite"):
            output = f"The file {path} has been updated." if not is_error else output
        call = Call(
            tool_use_id="toolu_" + _uuid(rng).replace("-", "")[:24],
            name=name,
            input=inputs[name],
            output=output,
            is_error=is_error,
            requested=len(self.messages),
            parent=parent,
            agent_id="Explore" if parent else "main",
        )
        self.calls.append(call)
        return call

    def _answer(self, calls: list[Call], parent: str) -> None:
        content = [
            {
                "type": "tool_result",
                "tool_use_id": c.tool_use_id,
                "content": c.output,
                "is_error": c.is_error,
            }
            for c in calls
        ]
        first = calls[0]
        structured: Any = (
            {"stdout": first.output, "stderr": "", "interrupted": False, "isImage": False}
            if first.name == "Bash"
            else {"type": "text", "filePath": first.input.get("file_path", "")}
        )
        for c in calls:
            c.answered = len(self.messages)
        message = self._user(content, parent=parent)
        message["tool_use_result"] = structured
        self.messages.append(message)

    def _init(self) -> dict[str, Any]:
        return {
            "type": "system",
            "subtype": "init",
            "session_id": self.session_id,
            "uuid": _uuid(self.rng),
            "cwd": "/work/repo",
            "model": self.model,
            "tools": [*TOOLS, "Task", "NotebookEdit", "WebSearch", "BashOutput", "KillShell"],
            "mcp_servers": [],
            "permissionMode": "bypassPermissions",
            "slash_commands": ["compact", "context", "cost", "init", "review"],
            "apiKeySource": "none",
            "claude_code_version": "2.0.37",
            "output_style": "default",
            "agents": ["general-purpose", "Explore", "Plan"],
        }

    def _user(self, content: Any, parent: str = "") -> dict[str, Any]:
        return {
            "type": "user",
            "uuid": _uuid(self.rng),
            "session_id": self.session_id,
            "parent_tool_use_id": parent or None,
            "message": {"role": "user", "content": content},
        }

    def _assistant(self, blocks: list[dict[str, Any]], parent: str) -> dict[str, Any]:
        rng = self.rng
        usage = {
            "input_tokens": rng.randint(3, 40),
            "output_tokens": rng.randint(20, 900),
            "cache_creation_input_tokens": rng.randint(0, 4000),
            "cache_read_input_tokens": rng.randint(5000, 60000),
        }
        for i, key in enumerate(usage):
            self.tokens[i] += usage[key]
        self.cost += usage["output_tokens"] * 15e-6 + usage["cache_read_input_tokens"] * 3e-7
        self.assistant_text += [b["text"] for b in blocks if b["type"] == "text"]
        return {
            "type": "assistant",
            "uuid": _uuid(rng),
            "session_id": self.session_id,
            "parent_tool_use_id": parent or None,
            "error": None,
            "message": {
                "id": "msg_" + _uuid(rng).replace("-", "")[:24],
                "role": "assistant",
                "model": self.model,
                "content": blocks,
                "stop_reason": "tool_use" if blocks[-1]["type"] == "tool_use" else "end_turn",
                "usage": usage,
            },
        }

    def _result(self) -> dict[str, Any]:
        return {
            "type": "result",
            "subtype": "success"
            if self.status == TaskStatus.COMPLETED
            else "error_during_execution",
            "uuid": _uuid(self.rng),
            "session_id": self.session_id,
            "is_error": self.status != TaskStatus.COMPLETED,
            "duration_ms": self.rng.randint(5_000, 900_000),
            "num_turns": len(self.messages) // 2,
            "total_cost_usd": round(self.cost, 6),
            "result": self.assistant_text[-1] if self.assistant_text else "",
            "usage": dict(zip(("input_tokens", "output_tokens"), self.tokens[:2], strict=True)),
        }

    def _text(self, sentences: int) -> str:
        picked = [self.rng.choice(SENTENCES) for _ in range(sentences)]
        return " ".join(picked).replace("{thing}", self.rng.choice(THINGS))

    # --- rows ------------------------------------------------------------------------------

    def execution(self) -> Execution:
        rng = self.rng
        duration = rng.randint(5_000, 900_000)
        failed = self.status != TaskStatus.COMPLETED
        verifier = "4 passed in 1.2s" if self.success else "FAILED tests/test_api.py::test_x"
        return Execution(
            task=self.task,
            session_id=self.session_id,
            status=self.status,
            is_partial=failed and rng.random() < 0.3,
            source=rng.choice(list(Source)).value,
            started_at=self.completed - timedelta(milliseconds=duration),
            completed_at=self.completed,
            duration_ms=duration,
            api_duration_ms=int(duration * 0.8),
            num_turns=self.turns,
            cost_usd=round(self.cost, 6),
            cost_estimated=rng.random() < 0.1,
            input_tokens=self.tokens[0],
            output_tokens=self.tokens[1],
            cache_creation_input_tokens=self.tokens[2],
            cache_read_input_tokens=self.tokens[3],
            usage={"input_tokens": self.tokens[0], "output_tokens": self.tokens[1]},
            model=self.model,
            outcome=self.assistant_text[-1] if self.assistant_text else "",
            success=None if self.status == TaskStatus.CANCELLED else self.success,
            error="max turns reached\nstopped after 60 turns" if failed else "",
            performance_metrics={"verifier": {"passed": self.success, "output": verifier}},
            metadata={
                "cwd": "/work/repo",
                "claude_code_version": "2.0.37",
                "prompt": self.task.description,
            },
            created_at=self.completed,
        )

    def message_rows(self) -> list[Message]:
        return [
            Message(
                execution_id=self.execution_pk,
                seq=i + 1,
                uuid=p["uuid"],
                type=p["type"],
                subtype=p.get("subtype", ""),
                parent_tool_use_id=p.get("parent_tool_use_id") or "",
                payload=p,
            )
            for i, p in enumerate(self.messages)
        ]

    def tool_call_rows(self) -> list[ToolCall]:
        return [
            ToolCall(
                execution_id=self.execution_pk,
                tool_use_id=c.tool_use_id,
                name=c.name,
                input=c.input,
                result=c.output,
                is_error=c.is_error,
                parent_tool_use_id=c.parent,
                agent_id=c.agent_id,
                requested_in_id=self.message_pks[c.requested],
                answered_in_id=self.message_pks[c.answered] if c.answered >= 0 else None,
            )
            for c in self.calls
        ]

    def action_rows(self, *, sub: bool) -> list[AgentAction]:
        """Main-agent actions first; sub-agent actions point at the Task call's action, so they
        are written second, once those have keys."""
        if sub:
            parents = {a.tool_use_id: a.pk for a in self.main_actions}
            calls = [c for c in self.calls if c.parent]
        else:
            calls = [c for c in self.calls if not c.parent]
        role = AgentRole.COORDINATOR if self.has_subagent else AgentRole.EXECUTOR
        rows = [
            AgentAction(
                execution_id=self.execution_pk,
                agent_id=c.agent_id,
                role=AgentRole.SPECIALIST if sub else role,
                action_type="tool_use",
                tool_name=c.name,
                content={"input": c.input},
                tool_use_id=c.tool_use_id,
                parent_id=parents.get(c.parent) if sub else None,
            )
            for c in calls
        ]
        if not sub:
            self.main_actions = rows
        return rows

    def example(self) -> TrainingExample:
        rng, few, showcase = self.rng, self.few, self.showcase
        # Others stay under 1.0: the showcase is the first row of the list and of the queue.
        score = round(min(0.99, max(0.0, rng.gauss(0.62, 0.2))), 3)
        score = 1.0 if showcase else 0.9 if few else score
        self.reviewed = few or (not showcase and rng.random() < 0.15)
        self.reviewer_id = rng.choice(self.gen.world.reviewers) if self.reviewed else None
        overridden = not few and self.reviewed and rng.random() < 0.05
        tags = rng.sample(TAGS, rng.randint(1, 3)) if rng.random() < 0.3 else []
        duplicate = None
        if self.gen.example_pks and rng.random() < 0.02:
            duplicate = rng.choice(self.gen.example_pks)
        reviewed_at = self.completed + timedelta(days=1) if self.reviewed else None
        return TrainingExample(
            execution_id=self.execution_pk,
            quality_score=0.3 if overridden else score,
            is_golden=few or showcase or (score >= 0.8 and rng.random() < 0.9),
            tags=["needs-look"] if few or showcase else tags,
            validated=few or (self.reviewed and rng.random() < 0.8),
            validator_notes="Looks right; the test covers the bug." if self.reviewed else "",
            reviewer_id=self.reviewer_id,
            reviewed_at=reviewed_at,
            fingerprint=f"{rng.getrandbits(256):064x}",
            duplicate_of_id=None if few or showcase else duplicate,
            quality_override=0.3 if overridden else None,
            quality_override_reason="Solved the wrong problem." if overridden else "",
            scored_quality=score,
            search_text=self.search_text(),
            created_at=self.completed,
            updated_at=reviewed_at or self.completed,
        )

    def search_text(self) -> str:
        """What `collection.search` indexes for this session; examples stored without a
        trajectory get their assistant text all the same."""
        texts = self.assistant_text
        payloads = [m for m in self.messages if m["type"] in ("user", "assistant")] or [
            {"type": "assistant", "message": {"content": [{"type": "text", "text": t}]}}
            for t in texts
        ]
        return build_search_text(self.task.name, self.task.description, payloads)

    def review_events(self) -> list[ReviewEvent]:
        rng = self.rng
        changes = [("validated", False, True), ("is_golden", False, True), ("tags", [], ["long"])]
        if self.showcase:  # tagged by a bulk action, not reviewed yet
            changes, self.reviewer_id = changes[2:], self.gen.world.reviewers[0]
        elif self.reviewed:
            changes = changes[: rng.randint(1, 3)]
        else:
            return []
        return [
            ReviewEvent(
                example_id=self.example_pk,
                user_id=self.reviewer_id,
                at=self.completed + timedelta(days=1, minutes=i),
                field=name,
                before=before,
                after=after,
                via="bulk" if self.showcase else rng.choice(["page", "queue", "admin", "bulk"]),
            )
            for i, (name, before, after) in enumerate(changes)
        ]

    def step_marks(self) -> list[StepMark]:
        marked = self.few or self.showcase or self.rng.random() < 0.05
        if not self.messages or not marked:
            return []
        assistant = [i for i, m in enumerate(self.messages) if m["type"] == "assistant"]
        picked = assistant[:1] if self.few else self.rng.sample(assistant, min(2, len(assistant)))
        return [
            StepMark(
                example_id=self.example_pk,
                message_id=self.message_pks[i],
                comment="Ran the whole suite instead of the failing test.",
                created_by_id=self.reviewer_id or self.gen.world.reviewers[0],
            )
            for i in picked
        ]


def _weighted(rng: Random, choices: list[tuple[Any, float]]) -> Any:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]
