"""Pydantic records at the edges: task definitions coming in, executions handed to scorers.

`TaskDefinition` and `TaskExecution` carry the seed's names and fields, so code written against
the seed (for example a custom scorer using `execution.actions` and `execution.cost_usd`) runs
unchanged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from collection.models import (
    SLUG_PATTERN,
    AgentRole,
    Difficulty,
    Execution,
    Task,
    TaskStatus,
    ToolCall,
)


class TaskDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    category: str = Field(pattern=SLUG_PATTERN)
    difficulty: Difficulty = Difficulty.MEDIUM
    required_tools: list[str] = Field(default_factory=list)
    expected_outcomes: list[str] = Field(default_factory=list)
    constraints: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    source_template: str = ""

    def get_or_create_task(self) -> Task:
        """The stored task with these fields, created on first use."""
        fields = self.model_dump(mode="json")
        task = Task.objects.filter(**{k: v for k, v in fields.items() if k != "metadata"}).first()
        return task or Task.objects.create(**fields)

    @classmethod
    def from_task(cls, task: Task) -> TaskDefinition:
        return cls.model_validate(
            {name: getattr(task, name) for name in cls.model_fields}, from_attributes=False
        )


class ActionRecord(BaseModel):
    agent_id: str
    agent_role: AgentRole
    action_type: str
    tool_name: str = ""
    content: dict[str, Any] = Field(default_factory=dict)
    reasoning: str = ""
    confidence: float | None = None


class ToolCallRecord(BaseModel):
    name: str
    input: dict[str, Any] = Field(default_factory=dict)
    result: Any = None
    is_error: bool | None = None


class TaskExecution(BaseModel):
    """A read-only snapshot of one execution, as scorers and exporters see it."""

    task: TaskDefinition
    session_id: str = ""
    status: TaskStatus = TaskStatus.PENDING
    is_partial: bool = False
    start_time: datetime | None = None
    end_time: datetime | None = None
    messages: list[dict[str, Any]] = Field(default_factory=list)
    actions: list[ActionRecord] = Field(default_factory=list)
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    outcome: str = ""
    success: bool | None = False  # None: unknown (an imported session without a verdict)
    cost_usd: float = 0.0
    duration_ms: int = 0
    num_turns: int = 0
    total_tokens: int = 0
    error: str = ""
    performance_metrics: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_execution(
        cls,
        execution: Execution,
        *,
        with_messages: bool = False,
        tool_calls: list[ToolCallRecord] | None = None,
    ) -> TaskExecution:
        """The snapshot scorers see; tool outputs (`result`) and messages, the bulk of a long
        session, are loaded only `with_messages` (exporters), so scoring stays small.
        `tool_calls`, when the caller read them for many executions at once (`tool_calls_of`),
        spares a query per execution."""
        return cls(
            task=TaskDefinition.from_task(execution.task),
            session_id=execution.session_id,
            status=TaskStatus(execution.status),
            is_partial=execution.is_partial,
            start_time=execution.started_at,
            end_time=execution.completed_at,
            messages=[m.payload for m in execution.messages.all()] if with_messages else [],
            actions=[
                ActionRecord(
                    agent_id=a.agent_id,
                    agent_role=AgentRole(a.role),
                    action_type=a.action_type,
                    tool_name=a.tool_name,
                    content=a.content,
                    reasoning=a.reasoning,
                    confidence=a.confidence,
                )
                for a in execution.actions.all()
            ],
            tool_calls=(
                tool_calls
                if tool_calls is not None
                else _tool_calls(execution, with_results=with_messages)
            ),
            outcome=execution.outcome,
            success=execution.success,
            cost_usd=execution.cost_usd,
            duration_ms=execution.duration_ms or 0,
            num_turns=execution.num_turns,
            total_tokens=execution.total_tokens,
            error=execution.error,
            performance_metrics=execution.performance_metrics,
        )


def tool_calls_of(execution_ids: list[int]) -> dict[int, list[ToolCallRecord]]:
    """The tool calls (without their outputs) of many executions, in one query."""
    found: dict[int, list[ToolCallRecord]] = {execution_id: [] for execution_id in execution_ids}
    rows = ToolCall.objects.filter(execution_id__in=execution_ids).order_by("id")
    for execution_id, name, arguments, is_error in rows.values_list(
        "execution_id", "name", "input", "is_error"
    ):
        # Stored rows, already of the record's types: built without validating each one.
        call = ToolCallRecord.model_construct(name=name, input=arguments, is_error=is_error)
        found[execution_id].append(call)
    return found


def _tool_calls(execution: Execution, *, with_results: bool) -> list[ToolCallRecord]:
    columns = ["name", "input", "is_error"] + (["result"] if with_results else [])
    return [
        ToolCallRecord.model_validate(row)
        for row in execution.tool_calls.order_by("id").values(*columns)
    ]
