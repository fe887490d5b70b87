"""Importing from the browser: the upload page, its limits, and the import it queues."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from django.core.files.storage import storages
from django.core.files.uploadedfile import SimpleUploadedFile

from collection.jobs.uploads import run_import_upload
from collection.models import Execution, ImportUpload, JobStatus

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).parent / "fixtures" / "transcripts"


def upload_of(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def post(client, upload, capture):
    with capture(execute=False):
        return client.post("/imports/", {"file": upload})


def test_a_reviewer_uploads_a_transcript_and_reads_the_report(
    client, reviewer, django_capture_on_commit_callbacks
):
    client.force_login(reviewer)
    content = (FIXTURES / "spotter__short.jsonl").read_bytes()
    response = post(client, upload_of("short.jsonl", content), django_capture_on_commit_callbacks)
    record = ImportUpload.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/imports/{record.pk}/"
    assert record.status == JobStatus.QUEUED and record.size == len(content)
    assert storages["uploads"].exists(record.path) and record.path.endswith("/short.jsonl")

    polled = client.get(f"/imports/{record.pk}/", headers={"HX-Request": "true"})
    assert polled.status_code == 200 and b"every 2s" in polled.content
    record = run_import_upload(record.pk)
    assert record.status == JobStatus.SUCCEEDED
    assert record.report["imported"] == 1 and record.report["errors"] == []
    assert record.report["sessions"][0]["file"] == "short.jsonl"
    assert not storages["uploads"].exists(record.path)  # removed from the store after the import
    assert Execution.objects.filter(source="imported").count() == 1
    polled = client.get(f"/imports/{record.pk}/", headers={"HX-Request": "true"})
    assert polled.status_code == 286 and b'id="import-imported">1<' in polled.content
    assert run_import_upload(record.pk) is None  # a redelivered message imports nothing


def test_a_zip_of_transcripts_imports_each_and_names_bad_lines(
    client, reviewer, django_capture_on_commit_callbacks
):
    client.force_login(reviewer)
    good = (FIXTURES / "spotter__tool_heavy.jsonl").read_bytes()
    broken = (FIXTURES / "spotter__short.jsonl").read_bytes() + b'{"type": "user", "broken\n'
    archive = zip_bytes({"proj/a.jsonl": good, "proj/b.jsonl": broken})
    post(client, upload_of("projects.zip", archive), django_capture_on_commit_callbacks)
    record = run_import_upload(ImportUpload.objects.get().pk)
    assert record.report["imported"] == 2
    [problem] = record.report["errors"]
    last_line = broken.count(b"\n")
    assert (problem["file"], problem["line"]) == ("proj/b.jsonl", last_line)
    assert Execution.objects.filter(is_partial=True).count() == 1
    page = client.get(f"/imports/{record.pk}/")
    assert f"proj/b.jsonl:{last_line}: ".encode() in page.content


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("evil.zip", zip_bytes({"../../escape.jsonl": b"{}"}), b"path escapes the upload folder"),
        ("abs.zip", zip_bytes({"/tmp/abs.jsonl": b"{}"}), b"path escapes the upload folder"),
        ("notes.txt", b"hello", b"expected one of .jsonl"),
        ("fake.zip", b"not a zip", b"not a zip archive"),
    ],
    ids=["dotdot", "absolute", "suffix", "not-zip"],
)
def test_a_bad_upload_is_refused_and_nothing_is_stored(
    client, reviewer, settings, tmp_path, name, content, message, django_capture_on_commit_callbacks
):
    settings.DATA_DIR = tmp_path / "data"
    client.force_login(reviewer)
    response = post(client, upload_of(name, content), django_capture_on_commit_callbacks)
    assert response.status_code == 400 and message in response.content
    assert not ImportUpload.objects.exists()
    # Refused before anything is written: no upload folder, and nothing escaped beside it.
    assert list(tmp_path.rglob("*")) == []


def test_the_upload_size_limit_is_a_setting(
    client, reviewer, settings, django_capture_on_commit_callbacks
):
    settings.TRAININGDASH_IMPORT_MAX_UPLOAD_BYTES = 100
    client.force_login(reviewer)
    response = post(client, upload_of("big.jsonl", b"x" * 101), django_capture_on_commit_callbacks)
    assert response.status_code == 400
    assert b"101 bytes is over the 100-byte upload limit" in response.content


def test_a_viewer_cannot_import(client, viewer):
    client.force_login(viewer)
    assert client.get("/imports/").status_code == 403
    assert client.post("/imports/", {"file": upload_of("a.jsonl", b"{}")}).status_code == 403


def test_an_upload_with_no_transcript_lists_the_skipped_file_and_why(
    client, reviewer, django_capture_on_commit_callbacks
):
    client.force_login(reviewer)
    upload = upload_of("package.json", b'{"name": "not-a-session", "version": "1.0.0"}')
    post(client, upload, django_capture_on_commit_callbacks)
    record = run_import_upload(ImportUpload.objects.get().pk)

    assert record is not None and record.report["imported"] == 0
    (skipped,) = record.report["ignored"]
    assert skipped["file"] == "package.json"
    assert skipped["reason"].startswith("not a transcript this dashboard can import")
    page = client.get(f"/imports/{record.pk}/").content.decode()
    assert "Skipped files" in page and "package.json: not a transcript" in page
    assert 'id="import-ignored-count">1<' in page


def test_an_upload_stored_by_the_web_is_imported_by_a_worker_with_another_data_folder(
    client, reviewer, settings, tmp_path, django_capture_on_commit_callbacks
):
    shared, web, worker = tmp_path / "shared", tmp_path / "web", tmp_path / "worker"
    backend = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    settings.STORAGES = settings.STORAGES | {"uploads": backend | {"OPTIONS": {"location": shared}}}
    settings.DATA_DIR = web
    client.force_login(reviewer)
    good = (FIXTURES / "spotter__tool_heavy.jsonl").read_bytes()
    archive = zip_bytes({"proj/a.jsonl": good, "proj/package.json": b'{"name": "x"}'})
    post(client, upload_of("projects.zip", archive), django_capture_on_commit_callbacks)
    record = ImportUpload.objects.get()
    folder, name = record.path.split("/")
    assert len(folder) == 32 and name == "projects.zip"
    assert (shared / record.path).read_bytes() == archive  # stored as uploaded, nothing unpacked
    assert not web.exists()  # nothing kept in the web's own data folder

    settings.DATA_DIR = worker
    done = run_import_upload(record.pk)
    assert done is not None and done.status == JobStatus.SUCCEEDED, record.error
    assert done.report["imported"] == 1
    assert done.report["sessions"][0]["file"] == "proj/a.jsonl"
    assert [entry["file"] for entry in done.report["ignored"]] == ["proj/package.json"]
    assert list(shared.iterdir()) == []  # the upload and its generated folder are gone
