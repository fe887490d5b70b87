"""Multi-agent training data: actions tracked by hand (the seed's API) or from real sessions.

Real SDK sessions with sub-agents (`ClaudeAgentOptions(agents=...)`, the Agent/Task tool) are
collected by `TrainingDataCollector`: sub-agent turns arrive with `parent_tool_use_id` and are
stored as specialist actions nested under the coordinator's delegation. `MultiAgentCollector`
adds the seed's manual API for agent systems that don't run through the SDK.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from collection.lifecycle import Outcome, finish, open_execution
from collection.models import (
    AgentAction,
    AgentRole,
    Execution,
    Source,
    Task,
    TaskStatus,
    TrainingExample,
)
from collection.schema import TaskDefinition
from collection.scoring import Scorer
from collection.sessions.collector import TrainingDataCollector
from collection.storage import TrainingStorage


class MultiAgentCollector(TrainingDataCollector):
    def __init__(
        self, storage: TrainingStorage | None = None, quality_scorer: Scorer | str | None = None
    ) -> None:
        super().__init__(storage, quality_scorer)
        self.pending: list[dict[str, Any]] = []

    def track_agent_action(
        self,
        agent_id: str,
        agent_role: AgentRole | str,
        action_type: str,
        tool_name: str = "",
        content: dict[str, Any] | None = None,
        reasoning: str = "",
        confidence: float | None = None,
        parent_agent_id: str | None = None,
    ) -> dict[str, Any]:
        """Remember one agent action; stored with the next `create_multi_agent_example`."""
        if confidence is not None and not 0 <= confidence <= 1:
            raise ValueError(f"confidence {confidence} for agent {agent_id!r} is outside 0..1")
        action = {
            "agent_id": agent_id,
            "role": AgentRole(agent_role),
            "action_type": action_type,
            "tool_name": tool_name or "",
            "content": content or {},
            "reasoning": reasoning,
            "confidence": confidence,
            "parent_agent_id": parent_agent_id,
        }
        self.pending.append(action)
        return action

    def create_multi_agent_example(
        self,
        task: TaskDefinition | Task,
        coordinator_session_id: str,
        outcome: str,
        success: bool,
        cost_usd: float = 0.0,
    ) -> TrainingExample:
        """Store the tracked actions as one execution and a scored example."""
        with transaction.atomic():
            execution = open_execution(
                task,
                source=Source.IMPORTED,
                session_id=coordinator_session_id,
                metadata={"multi_agent": True},
            )
            self._store_actions(execution)
            execution.cost_usd, execution.num_turns = cost_usd, len(self.pending)
            self.pending = []
            ended = Outcome(TaskStatus.COMPLETED, success=success, text=outcome)
            example = finish(execution, ended, self.quality_scorer)
        assert example is not None  # a completed session always makes an example
        self.last_example = example
        return example

    def _store_actions(self, execution: Execution) -> None:
        # A parent is the latest action of the named agent, usually the coordinator.
        latest: dict[str, AgentAction] = {}
        for a in self.pending:
            parent = latest.get(a["parent_agent_id"]) if a["parent_agent_id"] else None
            if parent is None and a["role"] != AgentRole.COORDINATOR:
                parent = next(
                    (x for x in reversed(latest.values()) if x.role == AgentRole.COORDINATOR), None
                )
            fields = {k: v for k, v in a.items() if k != "parent_agent_id"}
            latest[a["agent_id"]] = AgentAction.objects.create(
                execution=execution, parent=parent, **fields
            )
