"""The generate and template pages (the logic, without a browser)."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from collection.jobs.batches import GenerationParams, start_batch
from collection.models import GenerationBatch, JobStatus
from collection.task_templates import TaskTemplateLibrary

pytestmark = pytest.mark.django_db


def test_a_viewer_cannot_open_the_generate_page(client, viewer):
    client.force_login(viewer)
    assert client.get("/batches/").status_code == 403


def test_an_admin_starts_a_batch_from_the_form(
    client, admin_user, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=False):
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
    assert batch.jobs.count() == 1
    page = client.get(f"/batches/{batch.pk}/")
    assert b"0 / 1" in page.content


def test_a_bad_batch_form_names_the_problem(client, admin_user):
    client.force_login(admin_user)
    response = client.post(
        "/batches/",
        {"examples_per_category": 0, "seed": 0, "concurrency": 1, "backend": "scripted"},
    )
    assert response.status_code == 400
    assert b"greater than or equal to 1" in response.content
    assert not GenerationBatch.objects.exists()


def test_polling_stops_when_the_batch_is_finished(
    client, admin_user, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=False):
        batch = start_batch(GenerationParams(examples_per_category=1, categories=["testing"]))
    polled = client.get(f"/batches/{batch.pk}/", headers={"HX-Request": "true"})
    assert polled.status_code == 200 and b'hx-trigger="every 2s"' in polled.content
    batch.jobs.update(status=JobStatus.CANCELLED)
    polled = client.get(f"/batches/{batch.pk}/", headers={"HX-Request": "true"})
    assert polled.status_code == 286  # htmx: stop polling
    assert b"every 2s" not in polled.content


def test_cancel_and_resume_buttons(client, admin_user, django_capture_on_commit_callbacks):
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=False):
        batch = start_batch(GenerationParams(examples_per_category=1, categories=["testing"]))
        client.post(f"/batches/{batch.pk}/cancel/")
        assert batch.jobs.get().status == JobStatus.CANCELLED
        client.post(f"/batches/{batch.pk}/resume/")
    assert batch.jobs.get().status == JobStatus.QUEUED
    assert client.post(f"/batches/{batch.pk}/explode/").status_code == 404


def test_everyone_sees_the_template_library(client, viewer):
    client.force_login(viewer)
    page = client.get("/templates/")
    assert page.status_code == 200
    some = TaskTemplateLibrary.load().templates(category="debugging")[0]
    assert some.title.encode() in page.content
    assert b"Add a template" not in page.content


def zip_of(files: dict[str, str]) -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    buf.seek(0)
    buf.name = "template.zip"
    return buf


def template_files(library: TaskTemplateLibrary, name: str) -> dict[str, str]:
    """A built-in template's files, renamed to `name`, as an upload would carry them."""
    source = library.templates(category="debugging")[0]
    files = {}
    for path in source.root.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            files[f"{name}/{path.relative_to(source.root)}"] = path.read_text()
    manifest = json.loads(files[f"{name}/manifest.json"])
    manifest["name"] = name
    files[f"{name}/manifest.json"] = json.dumps(manifest)
    return files


def test_an_admin_uploads_a_template_and_it_joins_the_library(
    client, admin_user, settings, tmp_path
):
    settings.TRAININGDASH_TEMPLATE_DIRS = [tmp_path / "user-templates"]
    client.force_login(admin_user)
    upload = zip_of(template_files(TaskTemplateLibrary.load(), "my_uploaded_fix"))
    response = client.post("/templates/", {"archive": upload})
    assert response.status_code == 200, response.content[-2000:]
    assert b"my_uploaded_fix" in response.content
    assert (tmp_path / "user-templates" / "debugging" / "my_uploaded_fix").is_dir() or any(
        p.name == "my_uploaded_fix" for p in (tmp_path / "user-templates").rglob("*")
    )
    assert TaskTemplateLibrary.load().get("my_uploaded_fix")


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"../evil/manifest.json": "{}"}, b"path escapes the template folder"),
        ({"/etc/manifest.json": "{}"}, b"path escapes the template folder"),
        ({"t/manifest.json": "{not json"}, b"manifest.json"),
        ({"readme.txt": "hi"}, b"exactly one manifest.json"),
    ],
    ids=["dotdot", "absolute", "bad-json", "no-manifest"],
)
def test_a_bad_upload_is_refused_and_writes_nothing(
    client, admin_user, settings, tmp_path, files, message
):
    target = tmp_path / "user-templates"
    settings.TRAININGDASH_TEMPLATE_DIRS = [target]
    client.force_login(admin_user)
    response = client.post("/templates/", {"archive": zip_of(files)})
    assert response.status_code == 400
    assert message in response.content
    assert not target.exists() or not any(target.rglob("*"))
    assert not (tmp_path / "evil").exists()


def test_a_reviewer_cannot_upload_templates(client, reviewer, settings, tmp_path):
    settings.TRAININGDASH_TEMPLATE_DIRS = [tmp_path]
    client.force_login(reviewer)
    assert client.post("/templates/", {"archive": zip_of({"a": "b"})}).status_code == 403
