"""The task template page: everyone reads the library, only admins upload to it."""

from __future__ import annotations

import io

import pytest

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
