"""The export pages: starting an export from the example list, following it, the bundle list,
and downloads (admins only, from the job row's own file, gone once expired)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from collection.models import JobStatus
from collection.roles import ADMIN, REVIEWER, VIEWER, assign_role
from exports.bundles import exports_dir, format_choices
from exports.models import ExportJob
from tests.factories import make_example, make_execution, make_task

pytestmark = pytest.mark.django_db

ZIP = b"PK\x05\x06" + bytes(18)  # an empty zip archive


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"


def finished(name: str = "export-1-jsonl.zip", **kw) -> ExportJob:
    fields = {
        "format": "jsonl",
        "status": JobStatus.SUCCEEDED,
        "bundle_name": name,
        "size": len(ZIP),
        "counts": {"records": 3, "written": 2, "left_out": {"invalid": 1}},
        "expires_at": timezone.now() + timedelta(days=7),
    }
    job = ExportJob.objects.create(**(fields | kw))
    if job.bundle_name and "/" not in job.bundle_name:
        (exports_dir() / job.bundle_name).write_bytes(ZIP)
    return job


def as_role(client: Client, role: str | None) -> Client:
    if role == "anonymous":
        return client
    user = User.objects.create_user(f"user-{role}", password="password")
    if role is not None:
        assign_role(user, role)
    client.force_login(user)
    return client


# --- downloads -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"),
    [("anonymous", 302), (None, 403), (VIEWER, 403), (REVIEWER, 403), (ADMIN, 200)],
    ids=["anonymous", "no-role", "viewer", "reviewer", "admin"],
)
def test_only_admins_can_download_a_bundle(client, roles, role, status):
    job = finished()
    response = as_role(client, role).get(f"/exports/{job.pk}/download/")
    assert response.status_code == status
    if status == 200:
        assert b"".join(response.streaming_content) == ZIP
        assert response["Content-Disposition"] == 'attachment; filename="export-1-jsonl.zip"'
        assert response["Content-Type"] == "application/zip"


def test_the_file_comes_from_the_job_row_whatever_the_request_says(client, admin_user):
    job = finished()
    client.force_login(admin_user)
    response = client.get(f"/exports/{job.pk}/download/?name=../trainingdash.sqlite3")
    assert b"".join(response.streaming_content) == ZIP
    assert client.get("/exports/..%2F..%2Fsecret/download/").status_code == 404


@pytest.mark.parametrize(
    "forged",
    ["../planted.zip", "../../planted.zip", "/tmp/planted.zip", ".export-1-jsonl.zip.part"],
)
def test_a_forged_bundle_name_cannot_reach_a_file(client, admin_user, settings, forged):
    # A file the forged name would reach, were it followed.
    (exports_dir().parent / "planted.zip").write_bytes(b"secret")
    (exports_dir() / ".export-1-jsonl.zip.part").write_bytes(b"half")
    job = finished(name=forged)
    client.force_login(admin_user)
    assert client.get(f"/exports/{job.pk}/download/").status_code == 404


def test_an_expired_bundle_is_gone_and_its_file_deleted(client, admin_user):
    job = finished(expires_at=timezone.now() - timedelta(minutes=1))
    path = exports_dir() / job.bundle_name
    assert path.exists()
    client.force_login(admin_user)

    response = client.get(f"/exports/{job.pk}/download/")
    assert response.status_code == 410
    assert "This bundle has expired" in response.content.decode()
    assert not path.exists()
    job.refresh_from_db()
    assert job.bundle_name == "" and not job.has_bundle
    assert client.get(f"/exports/{job.pk}/download/").status_code == 410


def test_an_unfinished_export_has_nothing_to_download(client, admin_user):
    job = ExportJob.objects.create(format="jsonl", status=JobStatus.RUNNING)
    client.force_login(admin_user)
    assert client.get(f"/exports/{job.pk}/download/").status_code == 404


# --- starting an export from the example list ---------------------------------------------------


def test_an_admin_exports_the_current_filter_and_lands_on_the_job(client, admin_user):
    client.force_login(admin_user)
    query = "category=debugging&min_quality=0.5&sort=-cost&after=12"
    response = client.post("/exports/new/", {"format": "jsonl", "scope": "filter", "query": query})
    job = ExportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/exports/{job.pk}/"
    assert (job.format, job.status, job.created_by) == ("jsonl", JobStatus.QUEUED, admin_user)
    # The page's cursor and sort are not filters: an export is every match, in id order.
    assert job.filters == {"category": "debugging", "min_quality": 0.5}
    assert job.example_ids is None
    assert job.options["redact"] is True and job.options["exclude_duplicates"] is True


def test_an_admin_exports_the_checked_rows_with_options(client, admin_user):
    examples = [make_example(make_execution(make_task())) for _ in range(3)]
    client.force_login(admin_user)
    data = {
        "format": "messages",
        "scope": "selected",
        "ids": [examples[2].pk, examples[0].pk],
        "include_thinking": "on",
        "subagents": "coordinator_only",
        "query": "category=debugging",
    }
    response = client.post("/exports/new/", data, headers={"HX-Request": "true"})
    job = ExportJob.objects.get()
    assert response["HX-Redirect"] == f"/exports/{job.pk}/"
    assert job.example_ids == sorted([examples[0].pk, examples[2].pk]) and job.filters == {}
    assert job.options["include_thinking"] is True
    assert job.options["subagents"] == "coordinator_only"


@pytest.mark.parametrize(
    ("data", "said"),
    [
        ({"format": "jsonl", "scope": "selected"}, "select some examples first"),
        ({"format": "csv", "scope": "filter"}, "unknown format &#x27;csv&#x27;"),
        ({"format": "jsonl", "query": "min_quality=7"}, "min_quality"),
    ],
    ids=["empty-selection", "unknown-format", "bad-filter"],
)
def test_a_bad_export_request_goes_back_to_the_list_saying_why(client, admin_user, data, said):
    client.force_login(admin_user)
    response = client.post(
        "/exports/new/", data | {"query": data.get("query", "tag=x")}, follow=True
    )
    assert ExportJob.objects.count() == 0
    assert response.redirect_chain[0][0].startswith("/examples/?")
    page = response.content.decode()
    assert "Nothing exported:" in page and said in page


def test_the_example_list_offers_every_format_to_admins_only(client, roles):
    make_example()
    admin_page = as_role(client, ADMIN).get("/examples/").content.decode()
    assert 'id="export-control"' in admin_page
    for name, title in format_choices():
        assert f'<option value="{name}">{title}</option>' in admin_page
    assert 'formaction="/exports/new/"' in admin_page

    reviewer_page = as_role(Client(), REVIEWER).get("/examples/").content.decode()
    assert 'id="bulk"' in reviewer_page and 'id="export-control"' not in reviewer_page


# --- following an export, and the list -----------------------------------------------------------


def test_a_running_export_polls_every_two_seconds(client, viewer):
    job = ExportJob.objects.create(
        format="jsonl", status=JobStatus.RUNNING, progress_done=30, progress_total=120
    )
    client.force_login(viewer)
    response = client.get(f"/exports/{job.pk}/", headers={"HX-Request": "true"})
    assert response.status_code == 200
    fragment = response.content.decode()
    assert fragment.lstrip().startswith('<section id="export-progress"')
    assert 'hx-trigger="every 2s"' in fragment
    assert 'value="25"' in fragment  # 30 of 120


def test_a_finished_export_stops_the_polling(client, viewer):
    job = finished()
    client.force_login(viewer)
    response = client.get(f"/exports/{job.pk}/", headers={"HX-Request": "true"})
    assert response.status_code == 286
    assert "hx-trigger" not in response.content.decode()


def test_the_job_page_shows_counts_files_and_a_download_link_for_admins(client, admin_user):
    job = finished(
        manifest={
            "files": {"data.jsonl": {"sha256": "ab" * 32, "bytes": 2048}},
            "redactions": {"aws_key": 2},
            "findings": ["row 3: tool call toolu_1 was never answered"],
        }
    )
    client.force_login(admin_user)
    page = client.get(f"/exports/{job.pk}/").content.decode()
    assert f'href="/exports/{job.pk}/download/"' in page
    assert "invalid: 1" in page and "aws_key: 2" in page
    assert "ab" * 32 in page and "toolu_1 was never answered" in page


def test_the_exports_page_lists_bundles_with_size_counts_and_who(client, viewer, admin_user):
    job = finished(created_by=admin_user)
    ExportJob.objects.create(format="preference", status=JobStatus.QUEUED)
    client.force_login(viewer)
    page = client.get("/exports/").content.decode()
    row = page[page.index(f'<a href="/exports/{job.pk}/">') :].split("</tr>")[0]
    assert f"<td>{dict(format_choices())['jsonl']}</td>" in row
    assert "22\xa0bytes" in row and "alice" in row
    assert ">2</td>" in row and ">1</td>" in row  # rows written, left out
    assert "/download/" not in page  # viewers see the bundle is ready, not a link
    assert "ready" in row


def test_an_admin_cancels_a_queued_export_and_runs_a_failed_one_again(client, admin_user):
    queued = ExportJob.objects.create(format="jsonl")
    failed = ExportJob.objects.create(format="jsonl", status=JobStatus.FAILED, error="disk full")
    client.force_login(admin_user)
    assert client.post(f"/exports/{queued.pk}/cancel/").status_code == 302
    assert client.post(f"/exports/{failed.pk}/retry/").status_code == 302
    queued.refresh_from_db()
    failed.refresh_from_db()
    assert queued.status == JobStatus.CANCELLED
    assert failed.status == JobStatus.QUEUED and failed.error == ""
    assert client.post(f"/exports/{failed.pk}/explode/").status_code == 404


# --- the admin -----------------------------------------------------------------------------------


def test_the_example_admin_queues_an_export_of_the_selection_and_builds_nothing(client, admin_user):
    examples = [make_example(make_execution(make_task())) for _ in range(2)]
    client.force_login(admin_user)
    data = {"action": "export_as_preference", "_selected_action": [e.pk for e in examples]}
    response = client.post("/admin/collection/trainingexample/", data, follow=True)

    job = ExportJob.objects.get()
    assert (job.format, job.status, job.created_by) == ("preference", JobStatus.QUEUED, admin_user)
    assert job.example_ids == sorted(e.pk for e in examples)
    page = response.content.decode()
    assert f"Queued export #{job.pk} of 2 examples as Preference pairs (TRL DPO)" in page
    assert f'href="/exports/{job.pk}/"' in page
    assert list(exports_dir().iterdir()) == []  # nothing built in the request


def test_the_example_admin_offers_one_export_action_per_format(client, admin_user):
    make_example()
    client.force_login(admin_user)
    page = client.get("/admin/collection/trainingexample/").content.decode()
    for name, title in format_choices():
        assert f'<option value="export_as_{name}">Export selected as {title}</option>' in page
