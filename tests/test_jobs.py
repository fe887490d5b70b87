"""Collection jobs through the service, as the actor calls it."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from collection.jobs.runner import create_job, run_job
from collection.models import CollectionJob, Execution, JobKind, JobStatus, TaskStatus
from collection.sessions.chains import ChainStep, ConversationChain
from tests.factories import make_task
from tests.sessions import FIX_SCRIPT, VERIFIER, fix_spec, make_workspace

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def workspace(tmp_path):
    return make_workspace(tmp_path / "workspace")


def test_a_job_runs_in_a_fresh_sandbox_and_leaves_the_workspace_alone(
    workspace, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        job = create_job(make_task(), fix_spec(workspace))
    job = run_job(job.pk)
    assert job.status == JobStatus.SUCCEEDED and job.attempts == 1
    assert job.execution.success and job.execution.status == TaskStatus.COMPLETED
    assert job.execution.training_example.is_golden
    assert "a - b" in (workspace / "calc.py").read_text()  # the template is never touched
    assert job.started_at < job.finished_at and job.lease_expires_at is None
    # The final count, not the last lease renewal's.
    messages = job.execution.messages.count()
    assert job.progress == {"messages": messages, "tool_calls": 3, "last": "Bash"}


def test_a_redelivered_job_does_not_run_twice(workspace, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        job = create_job(make_task(), fix_spec(workspace))
    run_job(job.pk)
    assert run_job(job.pk) is None
    assert Execution.objects.count() == 1
    assert CollectionJob.objects.get().attempts == 1


def test_a_job_over_its_time_limit_fails_with_a_partial_execution(
    workspace, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        job = create_job(make_task(), fix_spec(workspace, policy="slow", script=None, timeout_s=3))
    job = run_job(job.pk)
    assert job.status == JobStatus.FAILED and "timed out after 3s" in job.error
    ex = job.execution
    assert ex.status == TaskStatus.FAILED and ex.is_partial and "timed out" in ex.error
    assert ex.messages.filter(subtype="init").exists()


def test_a_job_over_its_cost_limit_stops(workspace, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        job = create_job(
            make_task(), fix_spec(workspace, policy="max_turns", script=None, max_cost_usd=0.01)
        )
    job = run_job(job.pk)
    assert job.execution.status == TaskStatus.FAILED
    assert "budget" in job.execution.error


def test_a_queued_job_can_be_cancelled_before_it_runs(
    workspace, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        job = create_job(make_task(), fix_spec(workspace))
    job.request_cancel()
    assert job.status == JobStatus.CANCELLED
    assert run_job(job.pk) is None
    assert Execution.objects.count() == 0


def test_a_chain_of_three_steps_is_one_example_with_per_step_metrics(
    workspace, django_capture_on_commit_callbacks
):
    chain = ConversationChain(
        name="debug_chain",
        steps=[
            ChainStep(
                name="identify",
                prompt="Identify the root cause",
                allowed_tools=["Read"],
                extra={"script": [FIX_SCRIPT[1], {"text": "add() subtracts."}]},
            ),
            ChainStep(
                name="fix",
                prompt="Fix the issue",
                allowed_tools=["Read", "Edit"],
                depends_on=["identify"],
                extra={"script": FIX_SCRIPT[1:3] + [{"text": "Fixed."}]},
            ),
            ChainStep(
                name="verify",
                prompt="Verify the fix",
                allowed_tools=["Bash"],
                depends_on=["fix"],
                extra={"script": [FIX_SCRIPT[3], {"text": "Passes."}]},
            ),
        ],
    )
    with django_capture_on_commit_callbacks(execute=False):
        job = create_job(
            make_task(metadata={"verifier": VERIFIER}),
            fix_spec(workspace, chain=chain, script=None),
            kind=JobKind.CHAIN,
        )
    job = run_job(job.pk)
    ex = job.execution
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert ex.status == TaskStatus.COMPLETED and ex.success
    steps = {s["name"]: s for s in ex.performance_metrics["steps"]}
    assert [s["name"] for s in ex.performance_metrics["steps"]] == ["identify", "fix", "verify"]
    assert all(s["status"] == "completed" and s["cost_usd"] > 0 for s in steps.values())
    assert ex.num_turns == sum(s["num_turns"] for s in steps.values())
    assert ex.cost_usd == pytest.approx(sum(s["cost_usd"] for s in steps.values()))
    assert set(ex.messages.values_list("step", flat=True)) == {"identify", "fix", "verify"}
    assert "[identify] add() subtracts." in steps["fix"]["prompt"]
    assert "[fix] Fixed." in steps["verify"]["prompt"]
    assert "a + b" not in (workspace / "calc.py").read_text()
    assert ex.training_example.quality_score > 0


def test_the_collect_command_shows_progress_and_the_outcome(workspace, tmp_path):
    script = tmp_path / "fix.json"
    import json

    script.write_text(json.dumps(FIX_SCRIPT))
    out = StringIO()
    call_command(
        "collect",
        name="Fix add",
        category="debugging",
        difficulty="easy",
        prompt="Fix the failing test",
        policy="script",
        script=script,
        workspace=str(workspace),
        verifier=VERIFIER,
        stdout=out,
    )
    text = out.getvalue()
    assert "→ Edit" in text and "■ success" in text
    assert "Completed: success=True" in text and "golden" in text


def test_a_running_job_stops_when_cancelled(
    workspace, django_capture_on_commit_callbacks, settings
):
    import threading

    settings.COLLECTION_LEASE_SECONDS = 4  # the watcher checks every second
    with django_capture_on_commit_callbacks(execute=False):
        job = create_job(make_task(), fix_spec(workspace, policy="slow", script=None))
    finished = []
    runner = threading.Thread(target=lambda: finished.append(run_job(job.pk)))
    runner.start()
    try:
        from tests.test_broker import wait_for

        assert wait_for(lambda: Execution.objects.filter(messages__subtype="init").exists())
        job.request_cancel()
    finally:
        runner.join(timeout=60)
    job = finished[0]
    assert job.status == JobStatus.CANCELLED
    assert job.execution.status == TaskStatus.CANCELLED and job.execution.is_partial
    assert job.execution.error == "cancelled by a user"


def test_a_job_that_cannot_start_its_session_fails_with_the_reason(
    tmp_path, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        job = create_job(make_task(), fix_spec(tmp_path / "no-such-workspace"))
    job = run_job(job.pk)
    assert job.status == JobStatus.FAILED and job.lease_expires_at is None
    assert job.error.startswith("FileNotFoundError") and "no-such-workspace" in job.error
    assert job.execution is None and Execution.objects.count() == 0


def test_a_job_with_an_unknown_policy_fails_before_it_opens_an_execution(
    workspace, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        job = create_job(make_task(), fix_spec(workspace, policy="no-such-policy"))
    job = run_job(job.pk)
    assert job.status == JobStatus.FAILED and job.lease_expires_at is None
    assert job.error.startswith("ValueError: unknown scripted policy 'no-such-policy'")
    assert job.execution is None and Execution.objects.count() == 0


def test_a_verifier_that_does_not_exist_says_not_found_on_the_job_page(
    workspace, django_capture_on_commit_callbacks, client, viewer
):
    with django_capture_on_commit_callbacks(execute=False):
        job = create_job(make_task(), fix_spec(workspace, verifier="no-such-verifier-cmd"))
    job = run_job(job.pk)
    assert job.execution.success is False
    client.force_login(viewer)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "verifier failed" in page and "no-such-verifier-cmd: not found" in page
