"""The import pages: the uploads and their form, and an upload's report while it runs."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from collection.models import ImportUpload, JobStatus

pytestmark = pytest.mark.django_db

REPORT = {
    "imported": 2,
    "skipped": 1,
    "errors": [{"file": "b.jsonl", "line": 7, "reason": "not JSON"}],
    "sessions": [
        {"session_id": "s-1", "importer": "claude_code", "status": "imported", "messages_added": 9}
    ],
}


@pytest.fixture
def upload() -> ImportUpload:
    return ImportUpload.objects.create(
        file_name="sessions.zip", size=2048, path="/nowhere", status="running", report=REPORT
    )


def test_a_reviewer_sees_the_uploads_and_the_form(client, reviewer, upload):
    client.force_login(reviewer)
    page = client.get("/imports/")
    assert page.status_code == 200
    assert f'<a href="/imports/{upload.pk}/">sessions.zip</a>'.encode() in page.content
    assert b'id="import-form"' in page.content


@pytest.mark.parametrize(
    ("method", "url"), [("get", "/imports/"), ("post", "/imports/"), ("get", "/imports/{pk}/")]
)
def test_a_viewer_cannot_reach_the_import_pages(client, viewer, upload, method, url):
    client.force_login(viewer)
    assert getattr(client, method)(url.format(pk=upload.pk)).status_code == 403


def test_an_upload_without_a_file_is_a_400(client, reviewer):
    client.force_login(reviewer)
    response = client.post("/imports/", {"file": SimpleUploadedFile("empty.jsonl", b"")})
    assert response.status_code == 400
    assert b"The submitted file is empty" in response.content
    assert not ImportUpload.objects.exists()


def test_the_import_page_shows_the_report(client, reviewer, upload):
    client.force_login(reviewer)
    page = client.get(f"/imports/{upload.pk}/")
    assert page.status_code == 200 and b"<html" in page.content
    assert b'<span class="value" id="import-imported">2</span>' in page.content
    assert b"b.jsonl:7: not JSON" in page.content
    assert b"<td>s-1</td>" in page.content


def test_the_report_polls_while_the_import_runs(client, reviewer, upload):
    client.force_login(reviewer)
    polled = client.get(f"/imports/{upload.pk}/", headers={"HX-Request": "true"})
    assert polled.status_code == 200
    assert polled.content.decode().lstrip().startswith('<section id="import-report"')
    assert b'hx-trigger="every 2s"' in polled.content and b"<html" not in polled.content


@pytest.mark.parametrize("status", [JobStatus.SUCCEEDED, JobStatus.FAILED])
def test_polling_stops_with_286_once_the_import_is_finished(client, reviewer, upload, status):
    ImportUpload.objects.filter(pk=upload.pk).update(status=status)
    client.force_login(reviewer)
    polled = client.get(f"/imports/{upload.pk}/", headers={"HX-Request": "true"})
    assert polled.status_code == 286
    assert b"every 2s" not in polled.content


def test_a_missing_upload_is_a_404(client, reviewer):
    client.force_login(reviewer)
    assert client.get("/imports/999/").status_code == 404
