"""Sessions that never reached a model are failed jobs, not training examples.

Real Claude Code CLI, backend "claude" (as a team behind a gateway runs it): the endpoint is
our scripted model answering 5xx/529, a port nobody listens on, or no credentials at all.
"""

from __future__ import annotations

import json
import socket
import time

import pytest
from django.core.management import CommandError, call_command

from collection.jobs.runner import create_job, retries_within, run_job
from collection.models import Execution, JobStatus, TaskStatus, TrainingExample
from collection.scripted_model.request import PARAMS_HEADER
from collection.scripted_model.runtime import ensure_server
from collection.sessions.spec import JobSpec
from collection.verification import tail
from tests.factories import make_task

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def gateway(monkeypatch, tmp_path):
    """Point the claude backend at an endpoint of the test's choosing, with a home of its own
    (to prove the CLI leaves the user's ~/.claude alone)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)

    def use(base_url: str, api_key: str | None = "scripted:model_error:0", **params: object):
        monkeypatch.setenv("ANTHROPIC_BASE_URL", base_url)
        if api_key is None:
            monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
        else:
            monkeypatch.setenv("ANTHROPIC_API_KEY", api_key)
        monkeypatch.setenv("ANTHROPIC_CUSTOM_HEADERS", f"{PARAMS_HEADER}: {json.dumps(params)}")
        return home

    return use


def claude_job(django_capture_on_commit_callbacks, timeout_s: float = 30):
    spec = JobSpec(prompt="Say hello", backend="claude", timeout_s=timeout_s, max_turns=3)
    with django_capture_on_commit_callbacks(execute=False):
        return create_job(make_task(), spec)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(("status", "error_type"), [(529, "overloaded_error"), (500, "api_error")])
def test_an_endpoint_answering_errors_fails_the_job_and_makes_no_example(
    gateway, django_capture_on_commit_callbacks, status, error_type
):
    home = gateway(ensure_server().base_url, status=status, error_type=error_type)
    job = claude_job(django_capture_on_commit_callbacks, timeout_s=6)
    started = time.monotonic()
    job = run_job(job.pk)
    assert time.monotonic() - started < 6 + 10  # the retries fit in the time limit
    assert job.status == JobStatus.FAILED
    assert f"api_error_status={status}" in job.error and "no model response" in job.error
    assert job.progress["last"].startswith(f"API retry {retries_within(6)}/{retries_within(6)}")
    execution = job.execution
    assert execution.status == TaskStatus.FAILED and execution.success is False
    assert execution.performance_metrics["infrastructure_failure"] is True
    assert not TrainingExample.objects.exists()
    assert not (home / ".claude").exists()  # the session had its own config folder


def test_an_endpoint_that_is_down_fails_the_job_within_its_time_limit(
    gateway, django_capture_on_commit_callbacks
):
    gateway(f"http://127.0.0.1:{free_port()}")
    job = claude_job(django_capture_on_commit_callbacks, timeout_s=6)
    started = time.monotonic()
    job = run_job(job.pk)
    assert time.monotonic() - started < 6 + 10
    assert job.status == JobStatus.FAILED and "no model response" in job.error
    assert not TrainingExample.objects.exists()


def test_no_credentials_fails_the_job_and_the_collect_command_exits_non_zero(
    gateway, django_capture_on_commit_callbacks
):
    gateway(ensure_server().base_url, api_key=None)
    job = run_job(claude_job(django_capture_on_commit_callbacks).pk)
    assert job.status == JobStatus.FAILED
    assert "Not logged in" in job.error and "no model response" in job.error
    assert not TrainingExample.objects.exists()

    with pytest.raises(CommandError, match=r"failed: .*Not logged in"):
        call_command("collect", "--name", "Hello", "--prompt", "Say hello", "--backend", "claude")
    assert Execution.objects.count() == 2 and not TrainingExample.objects.exists()


def test_retries_fit_in_half_the_time_limit():
    assert [retries_within(t) for t in (0, 1, 3, 6, 60, 3600)] == [0, 1, 2, 2, 5, 10]


def test_verifier_output_is_kept_from_its_end_at_a_line_boundary():
    output = "\n".join(f"test_{n} ... ok" for n in range(2000)) + "\nFAILED (failures=1)"
    kept = tail(output, 300)
    assert kept.endswith("FAILED (failures=1)")
    first_kept = kept.split("\n")[1]
    assert first_kept.startswith("test_") and first_kept.endswith(" ... ok")
    assert kept.startswith(f"… ({len(output) - len(kept.split(chr(10), 1)[1])} characters")
    assert tail("all good\n") == "all good"


def test_a_batch_whose_sessions_could_not_run_does_not_end_succeeded(
    gateway, django_capture_on_commit_callbacks
):
    from collection.jobs.batches import GenerationParams, refresh_status, start_batch

    gateway(ensure_server().base_url, api_key=None)
    params = GenerationParams(
        examples_per_category=1, categories=["testing"], backend="claude", seed=1
    )
    with django_capture_on_commit_callbacks(execute=False):
        batch = start_batch(params)
    (job,) = batch.jobs.all()
    run_job(job.pk)
    batch = refresh_status(batch)
    assert batch.status == JobStatus.FAILED
    assert batch.error.startswith("1 of 1 sessions failed to run: no model response")
    assert not TrainingExample.objects.exists()
