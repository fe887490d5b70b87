"""Tiny factories with keyword defaults: make_task, make_execution, make_example."""

from __future__ import annotations

from typing import Any

from collection.models import Execution, Task, TaskStatus, ToolCall, TrainingExample


def make_task(**kw: Any) -> Task:
    fields = {
        "name": "Fix failing test",
        "description": "Make tests/test_math.py pass",
        "category": "debugging",
        "difficulty": "easy",
        "required_tools": ["Read", "Edit", "Bash"],
        "expected_outcomes": ["tests pass"],
    }
    return Task.objects.create(**(fields | kw))


def make_execution(task: Task | None = None, **kw: Any) -> Execution:
    fields = {
        "session_id": "sess-1",
        "status": TaskStatus.COMPLETED,
        "success": True,
        "num_turns": 4,
        "cost_usd": 0.01,
        "duration_ms": 12000,
        "source": "scripted",
    }
    return Execution.objects.create(task=task or make_task(), **(fields | kw))


def make_tool_call(execution: Execution, n: int, **kw: Any) -> ToolCall:
    fields = {"tool_use_id": f"toolu_{n}", "name": "Read", "input": {}, "is_error": False}
    return ToolCall.objects.create(execution=execution, **(fields | kw))


def make_example(execution: Execution | None = None, **kw: Any) -> TrainingExample:
    return TrainingExample.objects.create(execution=execution or make_execution(), **kw)
