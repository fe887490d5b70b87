"""Tiny factories with keyword defaults: make_task, make_execution, make_example."""

from __future__ import annotations

from typing import Any

from collection.models import Execution, Message, Task, TaskStatus, ToolCall, TrainingExample


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


# --- trajectories (the viewer's tests and bench) ---------------------------------------------


def make_message(execution: Execution, payload: dict[str, Any], **kw: Any) -> Message:
    """Store one payload at the end of the execution's trajectory, as the collector does."""
    message, _ = execution.append_message(payload, **kw)
    return message


def assistant_payload(
    blocks: list[dict[str, Any]], *, response: str, parent: str = "", **usage: int
) -> dict[str, Any]:
    """An SDK assistant message (stream-json shape) holding `blocks`."""
    return {
        "type": "assistant",
        "uuid": f"uuid-{response}",
        "parent_tool_use_id": parent or None,
        "message": {
            "id": response,
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": blocks,
            "usage": {"input_tokens": 100, "output_tokens": 50} | usage,
        },
    }


def result_payload(
    tool_use_id: str, content: Any, *, is_error: bool = False, parent: str = ""
) -> dict[str, Any]:
    """An SDK user message answering one tool call."""
    block = {"type": "tool_result", "tool_use_id": tool_use_id, "content": content}
    return {
        "type": "user",
        "uuid": f"uuid-result-{tool_use_id}",
        "parent_tool_use_id": parent or None,
        "message": {"role": "user", "content": [block | {"is_error": is_error}]},
    }


def tool_use(tool_use_id: str, name: str, **tool_input: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": tool_use_id, "name": name, "input": tool_input}


def make_trajectory(
    execution: Execution | None = None, *, turns: int = 3, output_lines: int = 3
) -> Execution:
    """A session as the live collector stores it (through the real recorder): init, a prompt,
    `turns` turns of thinking, text and a Bash call, then a closing answer and a result."""
    from collection.sessions.trajectory import TrajectoryRecorder

    execution = execution or make_execution(status=TaskStatus.IN_PROGRESS)
    recorder = TrajectoryRecorder(execution)
    init = {"type": "system", "subtype": "init", "uuid": "init", "model": "claude-sonnet-4-5"}
    recorder.record(init | {"tools": ["Bash", "Read", "Edit"], "cwd": "/work/sandbox"})
    recorder.record({"type": "user", "uuid": "prompt", "message": {"content": "Fix the tests"}})
    for n in range(1, turns + 1):
        call = tool_use(f"toolu_{n}", "Bash", command=f"pytest -k case_{n}")
        thinking = {"type": "thinking", "thinking": f"Turn {n}: run the next case."}
        text = {"type": "text", "text": f"Running **case {n}**."}
        recorder.record(assistant_payload([thinking, text, call], response=f"msg_{n}"))
        output = "\n".join(f"case_{n} line {i}" for i in range(output_lines))
        recorder.record(result_payload(f"toolu_{n}", output))
    done = {"type": "text", "text": "All cases pass."}
    recorder.record(assistant_payload([done], response="msg_done"))
    recorder.record(
        {"type": "result", "subtype": "success", "uuid": "result", "num_turns": turns + 1}
        | {"total_cost_usd": 0.05, "duration_ms": 4200, "is_error": False}
    )
    return execution
