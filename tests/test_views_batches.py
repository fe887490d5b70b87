"""The generate pages: batch list and form, a batch's progress, cancel and resume."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from collection.jobs.batches import SENT, GenerationParams, plan
from collection.models import CollectionJob, GenerationBatch, JobStatus
from collection.task_templates import TaskTemplateLibrary
from tests.factories import make_task
from tests.test_views_health import broker_down  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db

PARAMS = {"examples_per_category": 1, "categories": ["testing"], "seed": 0}


@pytest.fixture
def batch() -> GenerationBatch:
    """A running batch with its one planned job, queued and sent to the workers just now (a
    batch without jobs is finished)."""
    batch = GenerationBatch.objects.create(name="nightly", params=PARAMS, status="running")
    [planned] = plan(GenerationParams(**PARAMS), TaskTemplateLibrary.load())
    CollectionJob.objects.create(
        task=make_task(),
        batch=batch,
        plan_key=planned.plan_key,
        progress={SENT: timezone.now().isoformat()},
    )
    return batch


def resume_button(batch: GenerationBatch) -> bytes:
    return f'formaction="/batches/{batch.pk}/resume/"'.encode()


def test_an_admin_sees_the_batches_and_the_form(client, admin_user, batch):
    client.force_login(admin_user)
    page = client.get("/batches/")
    assert page.status_code == 200
    assert f'<a href="/batches/{batch.pk}/">nightly</a>'.encode() in page.content
    assert b'id="generate-form"' in page.content


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/batches/"),
        ("post", "/batches/"),
        ("get", "/batches/{pk}/"),
        ("post", "/batches/{pk}/cancel/"),
        ("post", "/batches/{pk}/resume/"),
    ],
)
@pytest.mark.parametrize("role", ["viewer", "reviewer"])
def test_only_admins_reach_the_batch_pages(client, request, batch, role, method, url):
    client.force_login(request.getfixturevalue(role))
    response = getattr(client, method)(url.format(pk=batch.pk))
    assert response.status_code == 403
    assert batch.jobs.get().status == JobStatus.QUEUED


def test_an_admin_starts_a_batch_from_the_form(
    client, admin_user, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=False) as sends:
        response = client.post(
            "/batches/",
            {
                "examples_per_category": 1,
                "categories": ["debugging"],
                "difficulties": ["easy"],
                "seed": 3,
                "concurrency": 1,
                "backend": "scripted",
            },
        )
    batch = GenerationBatch.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/batches/{batch.pk}/"
    assert batch.params["seed"] == 3 and batch.created_by == admin_user
    assert batch.jobs.count() == 1 and len(sends) == 1
    page = client.get(f"/batches/{batch.pk}/")
    assert b"0 / 1" in page.content
    assert b'seed <strong id="batch-seed">3</strong>' in page.content


def test_the_form_says_an_empty_seed_is_random_and_a_seed_reproduces_the_batch(
    client, admin_user, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)
    assert b"reproduces a batch exactly" in client.get("/batches/").content
    form = {"examples_per_category": 1, "categories": ["testing"], "concurrency": 1}
    with django_capture_on_commit_callbacks(execute=False):
        for _ in range(2):
            client.post("/batches/", form | {"backend": "scripted", "seed": ""})
    first, second = GenerationBatch.objects.order_by("id")
    assert isinstance(first.params["seed"], int) and first.params["seed"] != second.params["seed"]
    page = client.get(f"/batches/{first.pk}/")
    assert f'id="batch-seed">{first.params["seed"]}<'.encode() in page.content


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ({"backend": "gpt"}, b"Select a valid choice"),
        ({"examples_per_category": 0}, b"greater than or equal to 1"),
    ],
    ids=["unknown-backend", "no-examples"],
)
def test_a_bad_batch_form_is_a_400_naming_the_problem(client, admin_user, field, message):
    client.force_login(admin_user)
    form = {"examples_per_category": 1, "seed": 0, "concurrency": 1, "backend": "scripted"}
    response = client.post("/batches/", form | field)
    assert response.status_code == 400
    assert message in response.content
    assert not GenerationBatch.objects.exists()


def test_a_running_batch_page_polls_and_offers_cancel(client, admin_user, batch):
    client.force_login(admin_user)
    page = client.get(f"/batches/{batch.pk}/")
    assert page.status_code == 200 and b"<html" in page.content
    assert b'hx-trigger="every 2s"' in page.content
    assert f'formaction="/batches/{batch.pk}/cancel/"'.encode() in page.content
    assert resume_button(batch) not in page.content  # its job is on its way to a worker


def assert_resume_sends_the_job_again(client, batch, capture) -> None:
    """The page offers Resume, and resuming queues the batch's one job and sends it once."""
    assert resume_button(batch) in client.get(f"/batches/{batch.pk}/").content
    with capture(execute=False) as sends:
        response = client.post(f"/batches/{batch.pk}/resume/")
    assert response.status_code == 302 and len(sends) == 1
    assert batch.jobs.get().status == JobStatus.QUEUED


def test_an_interrupted_batch_offers_resume_and_resuming_sends_its_job_again(
    client, admin_user, batch, django_capture_on_commit_callbacks
):
    long_ago = timezone.now() - timedelta(hours=1)
    batch.jobs.update(progress={SENT: long_ago.isoformat()})  # its worker never took it
    client.force_login(admin_user)
    assert_resume_sends_the_job_again(client, batch, django_capture_on_commit_callbacks)


def test_an_htmx_poll_gets_the_progress_fragment(client, admin_user, batch):
    client.force_login(admin_user)
    polled = client.get(f"/batches/{batch.pk}/", headers={"HX-Request": "true"})
    assert polled.status_code == 200
    assert polled.content.decode().lstrip().startswith('<section id="batch-progress"')
    assert b'<span class="value" id="batch-finished">0 / 1</span>' in polled.content
    assert b"<html" not in polled.content


def test_polling_stops_with_286_once_the_batch_is_finished(client, admin_user, batch):
    batch.jobs.update(status=JobStatus.SUCCEEDED)
    client.force_login(admin_user)
    polled = client.get(f"/batches/{batch.pk}/", headers={"HX-Request": "true"})
    assert polled.status_code == 286
    assert b"every 2s" not in polled.content
    assert resume_button(batch) not in polled.content  # every session ran: nothing to resume


def test_resuming_a_batch_with_nothing_to_resume_is_refused(client, admin_user, batch):
    batch.jobs.update(status=JobStatus.SUCCEEDED)
    GenerationBatch.objects.filter(pk=batch.pk).update(status=JobStatus.SUCCEEDED)
    client.force_login(admin_user)
    response = client.post(f"/batches/{batch.pk}/resume/")
    assert response.status_code == 400
    assert b"Nothing to resume" in response.content
    batch.refresh_from_db()
    assert batch.status == JobStatus.SUCCEEDED
    assert batch.jobs.get().status == JobStatus.SUCCEEDED


def test_a_batch_stopped_by_its_cost_ceiling_says_so_with_the_spend(client, admin_user, batch):
    reason = "stopped: cost ceiling $0.25 reached ($0.1704 spent)"
    batch.jobs.update(status=JobStatus.CANCELLED, error=reason)
    GenerationBatch.objects.filter(pk=batch.pk).update(
        status=JobStatus.CANCELLED, error=reason, params=PARAMS | {"max_cost_usd": 0.25}
    )
    client.force_login(admin_user)
    page = client.get(f"/batches/{batch.pk}/")
    assert b'<span class="value" id="batch-status">Cancelled</span>' in page.content
    assert f'<p class="error" id="batch-reason">{reason}</p>'.encode() in page.content
    assert b"cost ceiling $0.25" in page.content
    assert resume_button(batch) in page.content  # its cancelled session can run again


def test_cancelling_a_batch_stops_its_jobs_and_goes_back_to_it(
    client, admin_user, batch, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(f"/batches/{batch.pk}/cancel/")
    assert response.status_code == 302 and response["Location"] == f"/batches/{batch.pk}/"
    assert batch.jobs.get().status == JobStatus.CANCELLED


def test_resuming_a_cancelled_batch_queues_its_jobs_again(
    client, admin_user, batch, django_capture_on_commit_callbacks
):
    batch.jobs.update(status=JobStatus.CANCELLED)
    GenerationBatch.objects.filter(pk=batch.pk).update(
        status=JobStatus.CANCELLED, cancel_requested=True
    )
    client.force_login(admin_user)
    assert_resume_sends_the_job_again(client, batch, django_capture_on_commit_callbacks)
    batch.refresh_from_db()
    assert batch.is_active and not batch.cancel_requested


def test_a_batch_action_is_only_ever_posted(client, admin_user, batch):
    client.force_login(admin_user)
    assert client.get(f"/batches/{batch.pk}/cancel/").status_code == 405
    assert batch.jobs.get().status == JobStatus.QUEUED


def test_a_missing_batch_is_a_404(client, admin_user):
    client.force_login(admin_user)
    assert client.get("/batches/999/").status_code == 404


def test_an_unknown_batch_action_is_a_404(client, admin_user, batch):
    client.force_login(admin_user)
    assert client.post(f"/batches/{batch.pk}/explode/").status_code == 404
    assert batch.jobs.get().status == JobStatus.QUEUED


def test_the_batch_form_passes_a_model_to_every_session(
    client, admin_user, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)
    form = {"examples_per_category": 1, "categories": ["testing"], "concurrency": 1}
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            "/batches/", form | {"backend": "claude", "model": "claude-via-gateway"}
        )
    assert response.status_code == 302
    batch = GenerationBatch.objects.get()
    assert batch.params["model"] == "claude-via-gateway"
    assert [job.spec["model"] for job in batch.jobs.all()] == ["claude-via-gateway"]
    assert [job.spec["backend"] for job in batch.jobs.all()] == ["claude"]


def test_the_batch_page_says_how_each_session_ended_and_why(client, admin_user, batch):
    from tests.factories import make_execution

    [job] = batch.jobs.all()
    verifier = {"exit_code": 1, "output": "test_x ... FAIL\n\nAssertionError: 45 != 0\n"}
    passed = make_execution(session_id="a")
    refused = make_execution(
        session_id="b", success=False, performance_metrics={"verifier": verifier}
    )
    stopped = make_execution(
        session_id="c", status="failed", success=False, error="error_max_turns; terminal_reason"
    )
    CollectionJob.objects.filter(pk=job.pk).update(execution=refused)
    for n, execution in enumerate([passed, stopped]):
        CollectionJob.objects.create(
            task=job.task, batch=batch, plan_key=f"k{n}", execution=execution
        )
    client.force_login(admin_user)
    page = client.get(f"/batches/{batch.pk}/").content.decode()
    assert '<span class="pass">passed</span>' in page
    assert '<span class="fail">verifier failed</span>' in page
    assert '<td class="meta">AssertionError: 45 != 0</td>' in page
    assert '<span class="fail">failed</span>' in page
    assert '<td class="meta">error_max_turns; terminal_reason</td>' in page


# --- the job queue down -------------------------------------------------------------------------

FORM = {
    "examples_per_category": 1,
    "categories": ["debugging"],
    "difficulties": ["easy"],
    "seed": 3,
    "concurrency": 1,
    "backend": "scripted",
}


@pytest.mark.usefixtures("broker_down")
def test_with_the_job_queue_down_starting_a_batch_creates_nothing_and_says_why(client, admin_user):
    client.force_login(admin_user)
    response = client.post("/batches/", FORM)
    assert response.status_code == 503
    page = response.content.decode()
    assert "Nothing was started: Redis at 127.0.0.1:" in page
    assert "is unreachable" in page
    assert not GenerationBatch.objects.exists()
    assert not CollectionJob.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("broker_down")
def test_a_queue_lost_as_the_batch_starts_fails_the_batch_which_resumes_later(
    client, admin_user, monkeypatch
):
    # The queue answers the check, then goes away before the sends (they run on commit).
    monkeypatch.setattr("collection.views.batches.check_broker", lambda: None)
    client.force_login(admin_user)
    response = client.post("/batches/", FORM, follow=True)
    batch = GenerationBatch.objects.get()
    assert response.redirect_chain == [(f"/batches/{batch.pk}/", 302)]
    assert batch.status == JobStatus.FAILED
    assert batch.error.startswith("not sent to the workers: Redis at 127.0.0.1:")
    assert [job.status for job in batch.jobs.all()] == [JobStatus.CANCELLED]
    page = response.content.decode()
    assert "The job queue went down as the batch started" in page
    assert f'<p class="error" id="batch-reason">{batch.error}</p>' in page
    assert resume_button(batch) in response.content


@pytest.mark.usefixtures("broker_down")
def test_resuming_with_the_job_queue_down_is_the_outage_page_and_changes_nothing(
    client, admin_user, batch
):
    batch.jobs.update(status=JobStatus.CANCELLED)
    GenerationBatch.objects.filter(pk=batch.pk).update(status=JobStatus.CANCELLED)
    client.force_login(admin_user)
    response = client.post(f"/batches/{batch.pk}/resume/")
    assert response.status_code == 503
    assert b"The job queue is not answering" in response.content
    assert batch.jobs.get().status == JobStatus.CANCELLED
    batch.refresh_from_db()
    assert batch.status == JobStatus.CANCELLED
