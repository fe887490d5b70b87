from __future__ import annotations

import pytest

from collection.jobs.runner import create_job, run_job
from collection.models import AgentRole, JobKind, JobStatus
from collection.schema import TaskDefinition
from collection.sessions.multi_agent import MultiAgentCollector
from collection.sessions.spec import JobSpec, SubagentSpec
from tests.factories import make_task
from tests.sessions import PYTHON, TOOLS, make_workspace

TASK = TaskDefinition(
    name="Full-stack feature", category="multi_agent", difficulty="hard", required_tools=["Write"]
)


@pytest.mark.django_db
def test_tracked_actions_become_one_nested_multi_agent_example():
    collector = MultiAgentCollector()
    collector.track_agent_action(
        agent_id="lead",
        agent_role=AgentRole.COORDINATOR,
        action_type="delegate",
        reasoning="Split backend and tests",
    )
    collector.track_agent_action(
        agent_id="backend_dev",
        agent_role=AgentRole.SPECIALIST,
        action_type="tool_use",
        tool_name="Write",
        content={"file": "api.py", "action": "create"},
        reasoning="Creating API endpoints",
    )
    collector.track_agent_action(
        agent_id="qa",
        agent_role="reviewer",
        action_type="review",
        confidence=0.7,
        parent_agent_id="backend_dev",
    )
    example = collector.create_multi_agent_example(
        task=TASK,
        coordinator_session_id="session_123",
        outcome="Feature implemented successfully",
        success=True,
        cost_usd=0.10,
    )
    ex = example.execution
    assert (ex.session_id, ex.success, ex.cost_usd) == ("session_123", True, 0.10)
    actions = {a.agent_id: a for a in ex.actions.all()}
    assert actions["backend_dev"].parent == actions["lead"]
    assert actions["qa"].parent == actions["backend_dev"]
    assert actions["backend_dev"].content == {"file": "api.py", "action": "create"}
    assert example.quality_score > 0.5 and collector.pending == []


@pytest.mark.django_db
def test_a_confidence_outside_zero_to_one_is_refused_naming_the_agent():
    with pytest.raises(ValueError, match="'qa'"):
        MultiAgentCollector().track_agent_action("qa", "reviewer", "review", confidence=1.5)


@pytest.mark.django_db(transaction=True)
def test_a_real_multi_agent_session_nests_specialists_under_the_coordinator(
    tmp_path, django_capture_on_commit_callbacks
):
    script = [
        {
            "tool": "Agent",
            "input": {
                "description": "review",
                "prompt": "Review calc.py",
                "subagent_type": "reviewer",
            },
            "subagent": [
                {"tool": "Read", "input": {"file_path": "calc.py"}},
                {"text": "add() subtracts."},
            ],
        },
        {
            "tool": "Agent",
            "input": {"description": "tests", "prompt": "Run the test", "subagent_type": "tester"},
            "subagent": [
                {"tool": "Bash", "input": {"command": f"{PYTHON} test_calc.py || true"}},
                {"text": "The test fails."},
            ],
        },
        {"text": "Both specialists reported."},
    ]
    agents = {
        "reviewer": SubagentSpec(
            description="Reviews code", prompt="You review code.", tools=["Read"]
        ),
        "tester": SubagentSpec(description="Runs tests", prompt="You run tests.", tools=["Bash"]),
    }
    spec = JobSpec(
        prompt="Review and test calc.py",
        allowed_tools=[*TOOLS, "Agent"],
        script=script,
        agents=agents,
        workspace=str(make_workspace(tmp_path / "w")),
    )
    with django_capture_on_commit_callbacks(execute=False):
        job = create_job(make_task(category="multi_agent"), spec, kind=JobKind.MULTI_AGENT)
    job = run_job(job.pk)
    assert job.status == JobStatus.SUCCEEDED, job.error
    ex = job.execution
    assert ex.metadata["agents"] and {"reviewer", "tester"} <= set(ex.metadata["agents"])
    delegations = list(ex.actions.filter(tool_name__in=["Agent", "Task"]))
    assert len(delegations) == 2
    assert all(d.role == AgentRole.COORDINATOR for d in delegations)
    read = ex.actions.get(tool_name="Read")
    bash = ex.actions.get(tool_name="Bash")
    assert (read.agent_id, read.role) == ("reviewer", AgentRole.SPECIALIST)
    assert (bash.agent_id, bash.role) == ("tester", AgentRole.SPECIALIST)
    assert read.parent in delegations and bash.parent in delegations
    assert read.parent != bash.parent
