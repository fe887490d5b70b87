"""The collection job pages: list, a job's live progress, cancel and retry."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from collection.models import CollectionJob, GenerationBatch, JobStatus
from collection.sessions.spec import JobSpec
from tests.factories import make_example, make_execution, make_task

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def make_job(**kw: Any) -> CollectionJob:
    task = kw.pop("task", None) or make_task()
    return CollectionJob.objects.create(task=task, spec=JobSpec(prompt="hi").model_dump(), **kw)


@pytest.mark.parametrize("role", ["viewer", "reviewer", "admin_user"])
def test_every_role_reads_the_job_list_and_a_job(client, request, role):
    job = make_job()
    client.force_login(request.getfixturevalue(role))
    listing = client.get("/jobs/")
    assert listing.status_code == 200
    assert f'href="/jobs/{job.pk}/"'.encode() in listing.content
    assert client.get(f"/jobs/{job.pk}/").status_code == 200


def test_the_list_filters_by_status_and_task(client, viewer):
    task = make_task(name="mine")
    failed = make_job(task=task, status=JobStatus.FAILED)
    make_job(status=JobStatus.FAILED)
    make_job(task=task)
    client.force_login(viewer)
    jobs = client.get(f"/jobs/?status=failed&task={task.pk}").context["jobs"]
    assert jobs == [failed]
    assert len(client.get("/jobs/?status=nonsense").context["jobs"]) == 3


def test_the_list_pages_by_cursor_newest_first(client, viewer, monkeypatch):
    monkeypatch.setattr("collection.views.jobs.PAGE_SIZE", 2)
    jobs = [make_job() for _ in range(3)]
    client.force_login(viewer)
    first = client.get("/jobs/")
    assert first.context["jobs"] == [jobs[2], jobs[1]]
    second = client.get(f"/jobs/?before={first.context['next_cursor']}")
    assert second.context["jobs"] == [jobs[0]]
    assert second.context["next_cursor"] is None


def test_a_running_job_polls_its_progress(client, viewer):
    job = make_job(status=JobStatus.RUNNING, progress={"messages": 7, "tool_calls": 3})
    client.force_login(viewer)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert 'hx-trigger="every 2s"' in page
    fragment = client.get(f"/jobs/{job.pk}/", **HTMX)
    assert fragment.status_code == 200
    html = fragment.content.decode()
    assert html.lstrip().startswith('<section id="job-progress"')
    assert '<span class="value" id="job-messages">7</span>' in html
    assert "<h1>" not in html


def test_a_finished_job_stops_the_polling(client, viewer):
    job = make_job(status=JobStatus.SUCCEEDED, finished_at=timezone.now())
    client.force_login(viewer)
    assert 'hx-trigger="every 2s"' not in client.get(f"/jobs/{job.pk}/").content.decode()
    fragment = client.get(f"/jobs/{job.pk}/", **HTMX)
    assert fragment.status_code == 286  # htmx stops polling
    assert b"every 2s" not in fragment.content


def test_a_failed_job_shows_its_error(client, viewer):
    job = make_job(status=JobStatus.FAILED, error="ConnectionError: model endpoint down")
    client.force_login(viewer)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert '<p class="error" id="job-error">ConnectionError: model endpoint down</p>' in page


def test_a_job_links_to_its_session_and_example(client, viewer):
    example = make_example(quality_score=0.75)
    job = make_job(status=JobStatus.SUCCEEDED, execution=example.execution)
    client.force_login(viewer)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert f'href="/executions/{example.execution_id}/"' in page
    assert f'href="/examples/{example.pk}/" id="job-example">example, quality 0.75' in page


def test_the_job_error_is_escaped(client, viewer):
    job = make_job(status=JobStatus.FAILED, error="<script>alert(1)</script>")
    client.force_login(viewer)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_viewers_see_no_cancel_or_retry_buttons(client, viewer):
    job = make_job(status=JobStatus.FAILED)
    client.force_login(viewer)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "/retry/" not in page and "/cancel/" not in page


def test_an_admin_cancels_a_queued_job(client, admin_user):
    job = make_job()
    client.force_login(admin_user)
    assert f"/jobs/{job.pk}/cancel/" in client.get(f"/jobs/{job.pk}/").content.decode()
    response = client.post(f"/jobs/{job.pk}/cancel/")
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert job.is_finished


def test_cancelling_a_running_job_asks_its_worker_to_stop(client, admin_user):
    job = make_job(status=JobStatus.RUNNING)
    client.force_login(admin_user)
    client.post(f"/jobs/{job.pk}/cancel/")
    job.refresh_from_db()
    assert (job.status, job.cancel_requested) == (JobStatus.RUNNING, True)
    assert "Cancel requested" in client.get(f"/jobs/{job.pk}/").content.decode()


def test_cancelling_a_finished_job_answers_409(client, admin_user):
    job = make_job(status=JobStatus.SUCCEEDED)
    client.force_login(admin_user)
    response = client.post(f"/jobs/{job.pk}/cancel/")
    assert response.status_code == 409
    assert "finished" in response.content.decode()
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED


def test_an_admin_retries_a_failed_job_with_a_fresh_execution(
    client, admin_user, stub_broker, django_capture_on_commit_callbacks
):
    earlier = make_execution()
    job = make_job(task=earlier.task, status=JobStatus.FAILED, error="boom", execution=earlier)
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/jobs/{job.pk}/retry/")
    assert response.status_code == 302
    job.refresh_from_db()
    assert (job.status, job.error, job.execution) == (JobStatus.QUEUED, "", None)
    assert stub_broker.queues["collection"].qsize() == 1
    earlier.refresh_from_db()  # kept, no longer linked


def test_retrying_a_queued_job_answers_409(
    client, admin_user, stub_broker, django_capture_on_commit_callbacks
):
    job = make_job()
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/jobs/{job.pk}/retry/").status_code == 409
    assert stub_broker.queues["collection"].qsize() == 0


def test_a_batch_job_is_retried_through_its_batch(client, admin_user, stub_broker):
    batch = GenerationBatch.objects.create(name="nightly", status=JobStatus.CANCELLED)
    job = make_job(batch=batch, plan_key="t:0", status=JobStatus.CANCELLED)
    client.force_login(admin_user)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "/retry/" not in page
    assert f'href="/batches/{batch.pk}/">its batch</a>' in page
    assert client.post(f"/jobs/{job.pk}/retry/").status_code == 409


@pytest.mark.parametrize("role", ["viewer", "reviewer"])
def test_only_admins_cancel_or_retry(client, request, role):
    job = make_job(status=JobStatus.FAILED)
    client.force_login(request.getfixturevalue(role))
    assert client.post(f"/jobs/{job.pk}/retry/").status_code == 403
    assert client.post(f"/jobs/{job.pk}/cancel/").status_code == 403


def test_an_unknown_action_is_404_and_a_get_is_405(client, admin_user):
    job = make_job()
    client.force_login(admin_user)
    assert client.post(f"/jobs/{job.pk}/explode/").status_code == 404
    assert client.get(f"/jobs/{job.pk}/cancel/").status_code == 405
    assert client.get("/jobs/999/").status_code == 404


def test_the_list_says_when_the_dead_letters_cannot_be_read(client, viewer):
    import socket

    import dramatiq
    import redis
    from dramatiq.brokers.redis import RedisBroker

    with socket.socket() as free:  # a port nothing listens on: a Redis that is down
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    down = RedisBroker(client=redis.Redis(port=port, socket_connect_timeout=1), middleware=[])
    job = make_job()
    previous = dramatiq.broker.global_broker
    dramatiq.set_broker(down)
    try:
        client.force_login(viewer)
        page = client.get("/jobs/")
    finally:
        dramatiq.broker.global_broker = previous
    assert page.status_code == 200 and f'href="/jobs/{job.pk}/"' in page.content.decode()
    assert "The dead-letter queue could not be read: Redis at" in page.content.decode()
