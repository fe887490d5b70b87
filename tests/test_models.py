from __future__ import annotations

import os

import pytest
from django.db import connection
from django.db.models import Count

from collection.models import AgentAction, AgentRole, Execution, Message, TrainingExample
from collection.schema import TaskDefinition, TaskExecution
from tests.factories import make_example, make_execution, make_task, make_tool_call

pytestmark = pytest.mark.django_db


def test_the_suite_runs_on_the_database_it_was_asked_for():
    # The test command runs the suite on SQLite and again on PostgreSQL; this pins which is which.
    expected = os.environ.get("TRAININGDASH_EXPECT_DB_VENDOR", "sqlite")
    assert connection.vendor == expected


def test_a_full_trajectory_round_trips_through_the_database():
    task = make_task(constraints=["no new dependencies"], metadata={"repo": "demo"})
    execution = make_execution(
        task,
        input_tokens=1200,
        output_tokens=300,
        cache_creation_input_tokens=5000,
        cache_read_input_tokens=7000,
        usage={"service_tier": "standard"},
        performance_metrics={"tool_error_rate": 0.25},
    )
    execution.append_message({"type": "system", "subtype": "init", "uuid": "u-1"})
    execution.append_message({"type": "assistant", "uuid": "u-2", "content": [{"type": "text"}]})
    make_tool_call(execution, 1, name="Bash", input={"command": "pytest"}, result="1 passed")
    coordinator = AgentAction.objects.create(
        execution=execution, agent_id="lead", role=AgentRole.COORDINATOR, action_type="delegate"
    )
    AgentAction.objects.create(
        execution=execution,
        agent_id="tester",
        role=AgentRole.SPECIALIST,
        action_type="tool_use",
        tool_name="Bash",
        confidence=0.9,
        parent=coordinator,
    )
    make_example(execution, quality_score=0.85, is_golden=True, tags=["python"])

    loaded = Execution.objects.get(pk=execution.pk)
    assert loaded.task.constraints == ["no new dependencies"]
    assert loaded.task.metadata == {"repo": "demo"}
    assert loaded.total_tokens == 1200 + 300 + 5000 + 7000
    assert loaded.usage == {"service_tier": "standard"}
    assert [m.uuid for m in loaded.messages.all()] == ["u-1", "u-2"]
    assert [m.seq for m in loaded.messages.all()] == [1, 2]
    assert loaded.tool_calls.get().input == {"command": "pytest"}
    assert loaded.actions.get(agent_id="tester").parent.agent_id == "lead"
    example = TrainingExample.objects.get(execution=loaded)
    assert (example.quality_score, example.is_golden, example.tags) == (0.85, True, ["python"])

    record = TaskExecution.from_execution(loaded, with_messages=True)
    assert record.task.name == task.name
    assert [a.agent_role for a in record.actions] == [AgentRole.COORDINATOR, AgentRole.SPECIALIST]
    assert len(record.messages) == 2 and record.tool_calls[0].result == "1 passed"


def test_a_redelivered_message_is_stored_once():
    execution = make_execution()
    first, created = execution.append_message({"type": "assistant", "uuid": "abc"})
    again, created_again = execution.append_message({"type": "assistant", "uuid": "abc"})
    assert created and not created_again
    assert first.pk == again.pk
    assert execution.messages.count() == 1


def test_messages_without_uuid_are_deduplicated_by_content_and_keep_their_order():
    execution = make_execution()
    execution.append_message({"type": "result", "subtype": "success", "num_turns": 3})
    execution.append_message({"type": "user", "content": "next"})
    execution.append_message({"type": "result", "subtype": "success", "num_turns": 3})
    stored = list(execution.messages.values_list("type", "seq"))
    assert stored == [("result", 1), ("user", 2)]


def test_the_same_uuid_may_appear_in_two_executions():
    one, two = make_execution(), make_execution(session_id="sess-2")
    one.append_message({"type": "user", "uuid": "shared"})
    two.append_message({"type": "user", "uuid": "shared"})
    assert Message.objects.filter(uuid="shared").aggregate(n=Count("id"))["n"] == 2


def test_a_task_definition_is_stored_once():
    definition = TaskDefinition(
        name="Fix Type Error",
        description="Fix the TypeScript type error in utils.ts",
        category="debugging",
        difficulty="easy",
        required_tools=["Read", "Edit"],
        expected_outcomes=["Type error resolved"],
    )
    assert definition.get_or_create_task().pk == definition.get_or_create_task().pk
    assert TaskDefinition.from_task(definition.get_or_create_task()) == definition


def test_a_task_definition_names_a_bad_field():
    with pytest.raises(ValueError, match="difficulty"):
        TaskDefinition(name="x", category="debugging", difficulty="impossible")
    with pytest.raises(ValueError, match="category"):
        TaskDefinition(name="x", category="Not A Slug")
