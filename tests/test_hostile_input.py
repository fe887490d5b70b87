"""Hostile input: path traversal, ORM lookups through filters, open redirects, and transcript,
task and upload text built to break pages (markup, NUL, bidi overrides, deep or huge JSON).

What must hold: nothing is written or read outside the folder it belongs in, no user-chosen ORM
lookup reaches a query, no redirect leaves the site, no page answers 500 and no transcript text
comes out unescaped, on every page, admin page and the HTML analytics report.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.urls import reverse

from collection.jobs.uploads import receive_upload, run_import_upload
from collection.models import (
    Execution,
    ImportUpload,
    JobStatus,
    Message,
    Task,
    TrainingExample,
)
from exports.bundles import exports_dir
from exports.models import ExportJob
from tests.factories import make_example

pytestmark = pytest.mark.django_db

MARKUP = '<script>alert("td")</script><img src=x onerror=alert(2)>"\'><tdx-mark>'
# A right-to-left override (a name that shows as "exe.jpg"), isolates, a right-to-left mark.
BIDI = "\u202egpj.exe \u2066iso\u2069 \u200fmark"
HOSTILE = f"{MARKUP} {BIDI}"

TRAVERSALS = (
    "../../../etc/passwd",
    "..%2f..%2f..%2fetc%2fpasswd",
    "..%252f..%252f..%252fetc%252fpasswd",
    "/etc/passwd",
    "....//....//etc/passwd",
    "..\\..\\..\\etc\\passwd",
    "%2e%2e/%2e%2e/etc/passwd",
    "evil\x00.jsonl",
)


def _unescaped(html: str) -> bool:
    return any(tag in html for tag in ("<script>alert", "<img src=x", "<tdx-mark>"))


# --- filters and sorts: only the allow-listed names reach the ORM -----------------------------


@pytest.fixture
def two_examples(admin_user, reviewer) -> list[TrainingExample]:
    reviewed = make_example(reviewer=reviewer, quality_score=0.9)
    return [reviewed, make_example(quality_score=0.2)]


ORM_PROBES = (
    {"reviewer__password__startswith": "md5"},
    {"execution__task__name__regex": ".*"},
    {"sort": "reviewer__password"},
    {"sort": "-execution__metadata"},
    {"min_quality": "0.1) OR 1=1 --"},
)


@pytest.mark.parametrize("probe", ORM_PROBES)
@pytest.mark.parametrize("url", ["/examples/", "/analytics/", "/analytics/report.html"])
def test_a_filter_or_sort_that_is_not_allow_listed_is_refused_by_name(
    admin_client, two_examples, url, probe
):
    response = admin_client.get(url, probe)
    assert response.status_code == 400
    name = next(iter(probe))
    assert (name if name in ("sort", "min_quality") else name.split("__")[0]) in (
        response.content.decode()
    )


@pytest.mark.parametrize("probe", ORM_PROBES[:2])
def test_the_review_queue_and_other_lists_ignore_names_they_do_not_know(
    admin_client, two_examples, probe
):
    for url in ("/review/", "/jobs/", "/tasks/", "/exports/"):
        assert admin_client.get(url, probe).status_code == 200, url
    queue = admin_client.get("/review/", probe).content.decode()
    assert "</strong> of 2 reviewed" in queue  # both examples: the name filtered nothing


@pytest.mark.parametrize("probe", ORM_PROBES[:2])
def test_exports_and_bulk_actions_refuse_a_query_with_an_orm_lookup(
    admin_client, two_examples, stub_broker, probe
):
    query = "&".join(f"{k}={v}" for k, v in probe.items())
    admin_client.post("/exports/new/", {"format": "jsonl", "scope": "filter", "query": query})
    assert not ExportJob.objects.exists()
    bulk = admin_client.post(
        "/examples/bulk/", {"action": "golden", "select": "all", "query": query}
    )
    assert bulk.status_code == 400
    assert not TrainingExample.objects.filter(is_golden=True).exists()


def test_the_admin_refuses_a_lookup_it_does_not_offer(admin_client, two_examples):
    response = admin_client.get(
        "/admin/collection/trainingexample/", {"reviewer__password__startswith": "md5"}
    )
    assert response.status_code in (302, 400)  # DisallowedModelAdminLookup or "?e=1"
    assert b"md5" not in response.content


# --- redirects through `next` stay on the site ------------------------------------------------

OFF_SITE = (
    "https://evil.example/",
    "//evil.example/",
    "/\\evil.example/",
    "\\\\evil.example",
    "javascript:alert(1)",
    "https:evil.example",
    " //evil.example",
    "http://testserver@evil.example/",
)


@pytest.mark.parametrize("target", OFF_SITE)
def test_signing_in_never_redirects_off_the_site(client, django_user_model, target):
    django_user_model.objects.create_user("eve", password="a long enough password")
    response = client.post(
        f"/accounts/login/?next={target}",
        {"username": "eve", "password": "a long enough password", "next": target},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("collection-dashboard")


@pytest.mark.parametrize("target", OFF_SITE)
def test_reviewing_never_redirects_off_the_site(client, reviewer, target):
    example = make_example()
    client.force_login(reviewer)
    review = client.post(f"/examples/{example.pk}/review/", {"next": target, "tags": "x"})
    assert review.status_code == 302 and review["Location"] == example.get_absolute_url()
    panel = client.get(f"/examples/{example.pk}/review/", {"next": target}).content.decode()
    assert "evil.example" not in panel and "javascript:" not in panel


# --- paths: uploads, zips, bundles, URLs ------------------------------------------------------


def _multipart(field: str, filename: str, content: bytes) -> tuple[bytes, str]:
    """A multipart body with the file name exactly as given (the test client would clean it)."""
    boundary = "hostileboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
        f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode("utf-8", "surrogateescape")
    return head + content + f"\r\n--{boundary}--\r\n".encode(), boundary


def _files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("name", [f"{t}.jsonl" for t in TRAVERSALS])
def test_an_uploaded_file_lands_in_a_generated_folder_whatever_its_name(
    client, reviewer, settings, tmp_path, stub_broker, name
):
    settings.DATA_DIR = tmp_path / "data"
    outside = _files_under(tmp_path)
    client.force_login(reviewer)
    body, boundary = _multipart("file", name, b'{"type": "system"}\n')
    response = client.post(
        "/imports/", body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert response.status_code in (302, 400), response.status_code
    created = _files_under(tmp_path) - outside
    # data/, data/uploads/, data/uploads/<32 hex>/, and the file itself, nothing else
    assert all(p.startswith("data") for p in created), created
    for upload in ImportUpload.objects.all():
        hex_name, file_name = PurePosixPath(upload.path).parts  # a name in the uploads store
        folder = settings.DATA_DIR / "uploads" / hex_name
        assert len(hex_name) == 32 and file_name == upload.file_name
        assert [p.parent for p in folder.iterdir()] == [folder]
        assert "/" not in upload.file_name and "\x00" not in upload.file_name


def _zip(entries: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16  # a symlink
            archive.writestr(info, target)
    return buffer.getvalue()


HOSTILE_ZIPS = {
    "parent": ({"../escaped.jsonl": b"{}"}, None),
    "deep parent": ({"a/../../escaped.jsonl": b"{}"}, None),
    "absolute": ({"/tmp/escaped.jsonl": b"{}"}, None),
    "backslash": ({"..\\escaped.jsonl": b"{}"}, None),
    "symlink": ({}, {"link.jsonl": "/etc/passwd"}),
    "symlinked folder": ({}, {"dir": "/etc"}),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_ZIPS))
def test_an_import_zip_with_an_escaping_entry_is_refused_and_nothing_is_written(
    client, reviewer, settings, tmp_path, stub_broker, case
):
    settings.DATA_DIR = tmp_path / "data"
    before = _files_under(tmp_path.parent)
    client.force_login(reviewer)
    archive = SimpleUploadedFile("sessions.zip", _zip(*HOSTILE_ZIPS[case]))
    response = client.post("/imports/", {"file": archive})
    assert response.status_code == 400
    page = response.content.decode()
    assert "escapes the upload folder" in page or "links are not allowed" in page
    assert not ImportUpload.objects.exists()
    created = _files_under(tmp_path.parent) - before
    assert {p for p in created if not p.startswith(tmp_path.name)} == set(), created
    assert not list((tmp_path / "data" / "uploads").glob("*/*"))


@pytest.mark.parametrize("case", sorted(HOSTILE_ZIPS))
def test_a_template_zip_with_an_escaping_entry_is_refused(admin_client, settings, tmp_path, case):
    settings.TRAININGDASH_TEMPLATE_DIRS = [tmp_path / "templates"]
    entries, links = HOSTILE_ZIPS[case]
    archive = SimpleUploadedFile("template.zip", _zip(entries, links))
    response = admin_client.post("/templates/", {"archive": archive})
    assert response.status_code == 400
    page = response.content.decode()
    assert "escapes the template folder" in page or "links are not allowed" in page
    assert not (tmp_path / "templates").exists()
    assert not (tmp_path.parent / "escaped.jsonl").exists()


@pytest.mark.parametrize(
    "bundle_name", ["../secret.zip", "/etc/passwd", "sub/x.zip", ".hidden.zip"]
)
def test_a_bundle_name_outside_the_exports_folder_is_never_served(
    admin_client, settings, tmp_path, bundle_name
):
    settings.DATA_DIR = tmp_path / "data"
    (tmp_path / "data").mkdir()
    (tmp_path / "secret.zip").write_bytes(b"PK secret")
    job = ExportJob.objects.create(format="jsonl", status=JobStatus.SUCCEEDED)
    ExportJob.objects.filter(pk=job.pk).update(bundle_name=bundle_name)
    assert admin_client.get(f"/exports/{job.pk}/download/").status_code == 404


def test_a_symlink_in_the_exports_folder_is_never_followed(admin_client, settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    (tmp_path / "secret.zip").write_bytes(b"PK secret")
    os.symlink(tmp_path / "secret.zip", exports_dir() / "export-1-jsonl.zip")
    job = ExportJob.objects.create(
        format="jsonl", status=JobStatus.SUCCEEDED, bundle_name="export-1-jsonl.zip"
    )
    assert admin_client.get(f"/exports/{job.pk}/download/").status_code == 404


def test_a_bundle_is_served_as_an_attachment_that_browsers_may_not_sniff(
    admin_client, settings, tmp_path
):
    settings.DATA_DIR = tmp_path / "data"
    (exports_dir() / "export-1-jsonl.zip").write_bytes(b"<html><script>alert(1)</script>")
    job = ExportJob.objects.create(
        format="jsonl", status=JobStatus.SUCCEEDED, bundle_name="export-1-jsonl.zip"
    )
    response = admin_client.get(f"/exports/{job.pk}/download/")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="export-1-jsonl.zip"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Type"] == "application/zip"


@pytest.mark.parametrize("url", ["/analytics/report.html", "/analytics/report.zip"])
def test_analytics_reports_are_attachments_that_browsers_may_not_sniff(admin_client, url):
    response = admin_client.get(url)
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment; filename=")
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("probe", TRAVERSALS[:7])
@pytest.mark.parametrize(
    "prefix", ["/static/", "/static/css/", "/exports/1/download/", "/imports/", "/admin/"]
)
def test_a_traversing_url_reads_no_file(admin_client, prefix, probe):
    response = admin_client.get(prefix + probe)
    assert response.status_code in (301, 302, 400, 404), response.status_code
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert b"root:" not in body and b"SECRET_KEY" not in body


@pytest.mark.parametrize("value", ["../../../etc/passwd", "%2e%2e%2f", "/etc/passwd"])
def test_query_values_that_look_like_paths_read_no_file(admin_client, value):
    example = make_example()
    execution = example.execution
    message, _ = execution.append_message({"type": "assistant", "content": []}, uuid="m1")
    urls = [
        f"/executions/{execution.pk}/messages/{message.pk}/raw/?part={value}",
        f"/analytics/plotly.min.js?v={value}",
        f"/examples/?tool={value}",
        f"/jobs/?status={value}&task={value}&before={value}",
    ]
    for url in urls:
        response = admin_client.get(url)
        assert response.status_code in (200, 400, 404), url
        assert b"root:x:" not in response.content


# --- transcript text through every page ---------------------------------------------------------


def _deep(depth: int) -> str:
    return '{"a": [' * depth + "1" + "]}" * depth


def hostile_transcript(*, nul: bool = True, depth: int = 40, huge: int = 300_000) -> bytes:
    """A stream-json session whose every text field is hostile."""
    text = HOSTILE + (" NUL:\x00." if nul else "")
    s = "hostile-session"
    records: list[dict[str, Any]] = [
        {"type": "system", "subtype": "init", "cwd": f"/w/{MARKUP}", "session_id": s}
        | {"tools": ["Bash", MARKUP], "model": f"claude-{MARKUP}", "uuid": "u0"},
        {"type": "user", "session_id": s, "uuid": "u1", "parent_tool_use_id": None}
        | {"message": {"role": "user", "content": f"PROMPT {text}"}},
        {
            "type": "assistant",
            "session_id": s,
            "uuid": "u2",
            "parent_tool_use_id": None,
            "message": {
                "id": "m1",
                "role": "assistant",
                "model": f"claude-{MARKUP}",
                "usage": {"input_tokens": 1, "output_tokens": 1},
                "content": [
                    {"type": "thinking", "thinking": f"THINK {text}"},
                    {"type": "text", "text": f"TEXT {text} [x](javascript:alert(3))"},
                    {"type": "tool_use", "id": "toolu_1", "name": f"Bash{MARKUP}"}
                    | {"input": {"command": f"echo {text}", "deep": "DEEP"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "Edit"}
                    | {"input": {"file_path": f"{MARKUP}.py", "old_string": text}}
                    | {"new_string": MARKUP},
                ],
            },
        },
        {"type": "user", "session_id": s, "uuid": "u3", "parent_tool_use_id": None}
        | {
            "message": {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": False}
                    | {"content": f"OUT {text}\n" + "x" * huge},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True}
                    | {"content": f"ERR {text}"},
                ],
            }
        },
        {"type": "result", "subtype": "success", "is_error": False, "duration_ms": 1}
        | {"num_turns": 1, "result": f"RESULT {text}", "session_id": s}
        | {"total_cost_usd": 0.01, "usage": {"input_tokens": 1, "output_tokens": 1}},
    ]
    lines = "\n".join(json.dumps(r) for r in records)
    return lines.replace('"deep": "DEEP"', f'"deep": {_deep(depth)}').encode()


def import_upload(user: User, content: bytes, name: str = "hostile.jsonl") -> ImportUpload:
    record = receive_upload(SimpleUploadedFile(name, content), user)
    done = run_import_upload(record.pk)
    assert done is not None
    return done


def every_page(execution: Execution, example: TrainingExample, upload: ImportUpload) -> list[str]:
    """Every page that shows something of this session, the admin's included."""
    e = execution.pk
    pages = [
        "/",
        "/examples/",
        f"/examples/?q=PROMPT&tag={MARKUP}&model=claude-{MARKUP}",
        f"/examples/{example.pk}/",
        f"/examples/{example.pk}/review/",
        "/review/",
        f"/review/?example={example.pk}",
        f"/executions/{e}/",
        "/tasks/",
        f"/tasks/{execution.task_id}/",
        f"/tasks/{execution.task_id}/edit/",
        "/imports/",
        f"/imports/{upload.pk}/",
        "/analytics/",
        "/analytics/report.html",
        f"/admin/collection/execution/{e}/change/",
        f"/admin/collection/trainingexample/{example.pk}/change/",
        f"/admin/collection/task/{execution.task_id}/change/",
        f"/admin/collection/importupload/{upload.pk}/change/",
        f"/admin/collection/execution/?q={MARKUP}",
    ]
    for model in ("execution", "message", "toolcall", "agentaction", "trainingexample", "task"):
        pages.append(f"/admin/collection/{model}/")
    for message in execution.messages.all():
        pages += [
            f"/executions/{e}/messages/{message.pk}/raw/",
            f"/admin/collection/message/{message.pk}/change/",
        ]
    for call in execution.tool_calls.all():
        pages += [
            f"/executions/{e}/tool-calls/{call.pk}/",
            f"/executions/{e}/tool-calls/{call.pk}/?part=input",
            f"/admin/collection/toolcall/{call.pk}/change/",
        ]
    for action in execution.actions.all():
        pages.append(f"/admin/collection/agentaction/{action.pk}/change/")
    return pages


def assert_every_page_is_safe(client: Client, pages: list[str]) -> None:
    broken = {}
    for url in pages:
        response = client.get(url)
        html = response.content.decode("utf-8", "replace")
        if response.status_code >= 500 or _unescaped(html):
            broken[url] = response.status_code
    assert broken == {}


def test_a_hostile_transcript_imports_and_every_page_shows_it_escaped(
    admin_user, settings, tmp_path
):
    settings.DATA_DIR = tmp_path
    nul = connection.vendor != "postgresql"  # see the NUL test below
    upload = import_upload(admin_user, hostile_transcript(nul=nul))
    assert upload.status == JobStatus.SUCCEEDED and upload.report["imported"] == 1, upload.report
    execution = Execution.objects.get()
    example = TrainingExample.objects.get(execution=execution)
    assert execution.tool_calls.count() == 2
    client = Client()
    client.force_login(admin_user)
    pages = every_page(execution, example, upload)
    assert_every_page_is_safe(client, pages)
    page = client.get(f"/examples/{example.pk}/").content.decode()
    assert "&lt;script&gt;alert" in page and "\u202egpj.exe" in page  # shown, as text
    assert 'href="javascript:' not in page


def test_hostile_task_fields_are_refused_or_shown_escaped(admin_client):
    fields = {
        "name": f"Task {HOSTILE}",
        "description": f"Do {HOSTILE}",
        "category": "debugging",
        "difficulty": "easy",
        "required_tools": "Bash, Read",
        "expected_outcomes": f"ok {MARKUP}",
    }
    nul = admin_client.post("/tasks/new/", fields | {"name": "bad\x00name"})
    assert nul.status_code == 400 and "Null characters are not allowed" in nul.content.decode()
    created = admin_client.post("/tasks/new/", fields)
    assert created.status_code == 302, created.content.decode()[:2000]
    task = Task.objects.get()
    for url in ("/tasks/", f"/tasks/{task.pk}/", f"/tasks/{task.pk}/edit/", "/admin/"):
        response = admin_client.get(url)
        assert response.status_code == 200 and not _unescaped(response.content.decode()), url


@pytest.mark.parametrize("field", ["validator_notes", "tags", "override_reason"])
def test_hostile_review_text_is_refused_or_shown_escaped(admin_client, field):
    example = make_example()
    data = {field: HOSTILE, "quality_override": "0.5" if field == "override_reason" else ""}
    response = admin_client.post(f"/examples/{example.pk}/review/", data)
    assert response.status_code in (302, 400)
    for url in (f"/examples/{example.pk}/", "/examples/", "/review/"):
        page = admin_client.get(url)
        assert page.status_code == 200 and not _unescaped(page.content.decode()), url
    refused = admin_client.post(f"/examples/{example.pk}/review/", {field: "a\x00b"})
    assert refused.status_code == 400


# --- faults found here that live in files this change may not touch (see the closing note) ----


def test_a_nul_byte_in_a_tool_output_never_costs_the_session(admin_user, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    upload = import_upload(admin_user, hostile_transcript(nul=True))
    assert upload.report["imported"] == 1, upload.report["errors"]
    # PostgreSQL can't store a NUL: it is U+FFFD, on every database, and the rest is kept.
    stored = json.dumps([m.payload for m in Message.objects.all()])
    assert "\\u0000" not in stored and "NUL:\\ufffd." in stored


def test_a_lone_surrogate_never_costs_the_session(admin_user, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    content = hostile_transcript(nul=False).replace(b"PROMPT ", b"PROMPT \\ud800 ")
    upload = import_upload(admin_user, content)
    assert upload.report["imported"] == 1, upload.report["errors"]
    assert "PROMPT \ufffd " in json.dumps(
        [m.payload for m in Message.objects.all()], ensure_ascii=False
    )


@pytest.mark.parametrize("depth", [240, 450])
def test_deeply_nested_tool_input_is_refused_at_import_or_shown(
    admin_user, settings, tmp_path, depth
):
    settings.DATA_DIR = tmp_path
    upload = import_upload(admin_user, hostile_transcript(nul=False, depth=depth, huge=10))
    client = Client()
    client.force_login(admin_user)
    if upload.report.get("imported"):
        execution = Execution.objects.get()
        example = TrainingExample.objects.get(execution=execution)
        assert_every_page_is_safe(client, every_page(execution, example, upload))
    else:
        assert "nested" in json.dumps(upload.report)


def test_json_nested_past_the_parser_limit_is_reported_by_file_and_line(
    admin_user, settings, tmp_path
):
    settings.DATA_DIR = tmp_path
    upload = import_upload(admin_user, hostile_transcript(nul=False, depth=3000, huge=10))
    assert upload.status == JobStatus.SUCCEEDED, upload.error
    (error,) = upload.report["errors"]
    assert error["file"] == "hostile.jsonl" and error["line"] == 3
