"""The task template page: everyone reads the library, only admins upload to it."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from collection.task_templates import TaskTemplateLibrary

pytestmark = pytest.mark.django_db


def test_an_admin_sees_the_library_and_the_upload_form(client, admin_user):
    client.force_login(admin_user)
    page = client.get("/templates/")
    assert page.status_code == 200
    assert b"Add a template" in page.content
    assert b'enctype="multipart/form-data" action="/templates/"' in page.content


def test_a_reviewer_reads_the_library_but_may_not_upload(client, reviewer, settings, tmp_path):
    settings.TRAININGDASH_TEMPLATE_DIRS = [tmp_path]
    client.force_login(reviewer)
    page = client.get("/templates/")
    assert page.status_code == 200 and b"Add a template" not in page.content
    archive = io.BytesIO(b"PK\x05\x06" + b"\x00" * 18)
    archive.name = "t.zip"
    assert client.post("/templates/", {"archive": archive}).status_code == 403
    assert not any(tmp_path.iterdir())


def test_a_viewer_may_not_upload_either(client, viewer):
    client.force_login(viewer)
    assert client.post("/templates/", {}).status_code == 403


def test_an_upload_without_a_file_is_a_400(client, admin_user):
    client.force_login(admin_user)
    response = client.post("/templates/", {})
    assert response.status_code == 400
    assert b"This field is required" in response.content


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


def use_shared_store(settings, folder: Path) -> None:
    """Uploaded templates in `folder`, as TRAININGDASH_SHARED_STORAGE would put them."""
    backend = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    settings.STORAGES = settings.STORAGES | {
        "templates": backend | {"OPTIONS": {"location": folder}}
    }


def test_an_admin_uploads_a_template_to_the_shared_store_and_every_machine_loads_it(
    client, admin_user, settings, tmp_path
):
    shared, web, worker = tmp_path / "shared", tmp_path / "web", tmp_path / "worker"
    use_shared_store(settings, shared)
    settings.DATA_DIR = web
    settings.TRAININGDASH_TEMPLATE_DIRS = [tmp_path / "user-templates"]
    client.force_login(admin_user)
    upload = zip_of(template_files(TaskTemplateLibrary.load(), "my_uploaded_fix"))
    response = client.post("/templates/", {"archive": upload})
    assert response.status_code == 200, response.content[-2000:]
    assert "Added template “my_uploaded_fix”" in response.content.decode()

    [stored] = [p.name for p in shared.iterdir()]
    name, digest, suffix = stored.split(".")
    assert (name, len(digest), suffix) == ("my_uploaded_fix", 64, "zip")
    assert hashlib.sha256((shared / stored).read_bytes()).hexdigest() == digest
    assert not (tmp_path / "user-templates").exists()  # the machine-local folder is untouched
    cached = web / "cache" / "templates" / digest / "debugging" / "my_uploaded_fix"
    assert (cached / "manifest.json").is_file() and (cached / "workspace").is_dir()

    settings.DATA_DIR = worker  # another machine: fetched into its own cache
    template = TaskTemplateLibrary.load().get("my_uploaded_fix")
    assert (template.root, template.digest) == (
        worker / "cache" / "templates" / digest / "debugging" / "my_uploaded_fix",
        digest,
    )
    again = client.post(
        "/templates/",
        {"archive": zip_of(template_files(TaskTemplateLibrary.load(), "my_uploaded_fix"))},
    )
    assert again.status_code == 400
    assert (
        "a template named &#x27;my_uploaded_fix&#x27; already exists (uploaded)"
        in again.content.decode()
    )
    assert [p.name for p in shared.iterdir()] == [stored]


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
    use_shared_store(settings, tmp_path / "shared")
    settings.DATA_DIR = tmp_path / "data"
    client.force_login(admin_user)
    response = client.post("/templates/", {"archive": zip_of(files)})
    assert response.status_code == 400
    assert message in response.content
    # refused before anything is stored
    assert not target.exists() and not (tmp_path / "shared").exists()
    assert not (tmp_path / "evil").exists()
