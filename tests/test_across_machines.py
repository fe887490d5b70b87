"""Across machines: a web process and two workers, each with its own data folder, sharing only
one PostgreSQL database, one Redis and one shared store (TRAININGDASH_SHARED_STORAGE).

Through HTTP as a signed-in admin: upload a template and a transcript, generate a batch from the
uploaded template and a built-in one, export, download. Every shared file goes through the store;
job specs name their templates and the workers fill in their own paths.
"""

from __future__ import annotations

import http.cookiejar
import io
import json
import os
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zipfile
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.db import connection

from collection.models import (
    CollectionJob,
    GenerationBatch,
    ImportUpload,
    JobStatus,
    TrainingExample,
)
from collection.task_templates import BUILTIN_DIR, TaskTemplateLibrary
from exports.models import ExportJob
from tests.services import require
from tests.test_broker import ROOT, start_worker, stop_worker, wait_for, worker_env

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
FIXTURES = Path(__file__).parent / "fixtures" / "transcripts"
UPLOADED = "shared_median_fix"


class Browser:
    """A signed-in browser: cookies, the CSRF header, multipart posts; redirects not followed."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect()
        )

    def request(
        self, path: str, fields: dict[str, Any] | None = None, file: tuple | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        headers = {"X-CSRFToken": self._csrf(), "Referer": self.base + "/"}
        body = None
        if fields is not None or file is not None:
            body, content_type = _multipart(fields or {}, file)
            headers["Content-Type"] = content_type
        req = urllib.request.Request(self.base + path, data=body, headers=headers)
        try:
            with self.opener.open(req, timeout=60) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def sign_in(self, username: str, password: str) -> None:
        self.request("/accounts/login/")  # sets the CSRF cookie
        status, headers, _ = self.request(
            "/accounts/login/", {"username": username, "password": password}
        )
        assert status == 302 and headers["Location"] == "/", status

    def _csrf(self) -> str:
        return next((c.value or "" for c in self.jar if c.name == "csrftoken"), "")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None


def _multipart(fields: dict[str, Any], file: tuple | None) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'
            parts.append(f"{head}\r\n\r\n{item}\r\n".encode())
    if file is not None:
        field, filename, content = file
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
            + content
            + b"\r\n"
        )
    return b"".join(
        parts
    ) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def template_zip(name: str) -> bytes:
    """The built-in easy debugging template's files, renamed: what an admin would upload."""
    source = TaskTemplateLibrary.load([], include_stored=False).get("fix_failing_median")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in sorted(source.root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                data = path.read_bytes()
                if path.name == "manifest.json":
                    data = json.dumps(json.loads(data) | {"name": name}).encode()
                zf.writestr(f"{name}/{path.relative_to(source.root)}", data)
    return buffer.getvalue()


def pk_in(pattern: str, location: str) -> int:
    found = re.fullmatch(pattern, location)
    assert found is not None, location
    return int(found[1])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_web(port: int, env: dict[str, str]) -> subprocess.Popen:
    """The web process as `manage.py up` starts it: gunicorn on the project's WSGI app."""
    command = [sys.executable, "-m", "gunicorn", "trainingdash.wsgi", "--bind"]
    command += [f"127.0.0.1:{port}", "--workers", "1", "--threads", "4"]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def web_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5):
            return True
    except urllib.error.HTTPError:
        return True  # it answers (health says what it thinks of the workers)
    except OSError:
        return False


def worker_pid(owner: str) -> int:
    """The dramatiq process a job's lease owner (host:pid:thread:hex) names: its parent's pid
    is the `dramatiq` command we started."""
    pid = int(owner.split(":")[1])
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def finished(model: Any, pk: int) -> bool:
    return model.objects.get(pk=pk).status in (
        JobStatus.SUCCEEDED,
        JobStatus.FAILED,
        JobStatus.CANCELLED,
    )


@pytest.mark.django_db(transaction=True)
def test_web_and_two_workers_with_their_own_data_folders_share_only_the_store(
    tmp_path, settings, admin_user
):
    require("PostgreSQL", connection.vendor == "postgresql", "set DATABASE_URL")
    require("Redis", bool(settings.REDIS_URL), "set REDIS_URL")
    shared, web_dir = tmp_path / "shared", tmp_path / "web"
    worker_dirs = [tmp_path / "worker-1", tmp_path / "worker-2"]
    store = {
        "TRAININGDASH_SHARED_STORAGE": "django.core.files.storage.FileSystemStorage",
        "TRAININGDASH_SHARED_STORAGE_OPTIONS": json.dumps({"location": str(shared)}),
    }
    port = free_port()
    web = start_web(port, worker_env() | store | {"TRAININGDASH_DATA_DIR": str(web_dir)})
    workers = [start_worker(**store, TRAININGDASH_DATA_DIR=str(d)) for d in worker_dirs]
    try:
        if not wait_for(lambda: web_answers(port), 60):
            pytest.fail(f"the web process never answered:\n{stop_worker(web)}")
        browser = Browser(f"http://127.0.0.1:{port}")
        browser.sign_in(admin_user.username, "password")
        run_the_flow(browser, shared, web_dir, worker_dirs, workers)
    finally:
        logs = {
            name: stop_worker(p) for name, p in [("web", web), ("1", workers[0]), ("2", workers[1])]
        }
    assert "Traceback" not in logs["web"], logs["web"][-3000:]


def run_the_flow(
    browser: Browser,
    shared: Path,
    web_dir: Path,
    worker_dirs: list[Path],
    workers: list[subprocess.Popen],
) -> None:
    # 1. A template, uploaded to the web process, lands in the shared store.
    status, _, page = browser.request(
        "/templates/", {}, ("archive", "t.zip", template_zip(UPLOADED))
    )
    assert status == 200 and f"Added template “{UPLOADED}”" in page.decode(), page[-2000:]
    [stored] = [p.name for p in (shared / "uploaded-templates").iterdir()]
    digest = stored.split(".")[1]

    # 2. A transcript, uploaded to the web process, imported by a worker.
    transcript = (FIXTURES / "spotter__short.jsonl").read_bytes()
    status, headers, _ = browser.request("/imports/", {}, ("file", "short.jsonl", transcript))
    assert status == 302, status
    upload_pk = pk_in(r"/imports/(\d+)/", headers["Location"])

    # 3. A batch over the easy debugging templates: the built-in one and the uploaded one.
    fields = {
        "examples_per_category": 4,
        "categories": "debugging",
        "difficulties": "easy",
        "seed": 11,
        "concurrency": 4,
        "backend": "scripted",
    }
    status, headers, page = browser.request("/batches/", fields)
    assert status == 302, page[-2000:]
    batch_pk = pk_in(r"/batches/(\d+)/", headers["Location"])

    assert wait_for(lambda: finished(ImportUpload, upload_pk), 120), "the import never ended"
    assert wait_for(lambda: finished(GenerationBatch, batch_pk), 300), "the batch never ended"
    upload = ImportUpload.objects.get(pk=upload_pk)
    assert upload.status == JobStatus.SUCCEEDED, upload.error
    assert upload.report["imported"] == 1, upload.report
    assert upload.report["sessions"][0]["file"] == "short.jsonl"
    assert not any((shared / "uploads").rglob("*"))  # fetched, imported, deleted

    jobs = list(CollectionJob.objects.filter(batch_id=batch_pk).select_related("execution", "task"))
    library = TaskTemplateLibrary.load([], include_stored=False)
    assert sorted(job.task.source_template for job in jobs) == sorted(
        ["fix_failing_median", UPLOADED] * 2
    )
    ran_uploaded = set()
    for job in jobs:
        assert job.status == JobStatus.SUCCEEDED, job.error
        assert job.execution is not None
        seed = job.spec["seed"]
        planned = job.spec["script"].get("outcome", "success")
        if job.task.source_template == "fix_failing_median":
            assert planned == library.get("fix_failing_median").planned_outcome(seed)
        # The verifier, run by the worker with its own interpreter and paths, decides.
        assert job.execution.success is (planned == "success"), (job.pk, planned)
        if planned == "success":
            assert job.execution.performance_metrics["verifier"]["exit_code"] == 0
        stored = json.dumps(job.spec)  # what the worker runs: no path of the web's machine
        for local in (str(web_dir), str(BUILTIN_DIR), sys.executable, str(ROOT)):
            assert local not in stored, (job.pk, local)
        if job.task.source_template == UPLOADED:
            assert job.spec["template"] == {"name": UPLOADED, "builtin": False, "digest": digest}
            ran_uploaded.add(worker_pid(job.lease_owner))
    assert any(job.execution and job.execution.success for job in jobs)
    # Each worker that ran the uploaded template has it in its own cache, nowhere else.
    assert ran_uploaded
    for worker, folder in zip(workers, worker_dirs, strict=True):
        if worker.pid in ran_uploaded:
            cached = folder / "cache" / "templates" / digest / "debugging" / UPLOADED
            assert (cached / "manifest.json").is_file() and (cached / "workspace").is_dir()
    assert not (web_dir / "uploads").exists() and not (web_dir / "sandboxes").exists()

    # 4. An export built by a worker, saved to the store, downloaded from the web process.
    status, headers, _ = browser.request("/exports/new/", {"format": "jsonl", "scope": "filter"})
    assert status == 302, status
    export_pk = pk_in(r"/exports/(\d+)/", headers["Location"])
    assert wait_for(lambda: finished(ExportJob, export_pk), 120), "the export never ended"
    export = ExportJob.objects.get(pk=export_pk)
    assert export.status == JobStatus.SUCCEEDED, export.error
    status, headers, bundle = browser.request(f"/exports/{export_pk}/download/")
    assert status == 200 and headers["X-Content-Type-Options"] == "nosniff"
    assert bundle == (shared / "exports" / export.bundle_name).read_bytes()
    assert not (web_dir / "exports").exists()
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        manifest = orjson.loads(archive.read("manifest.json"))
        lines = archive.read("data.jsonl").decode().splitlines()
    counts = manifest["counts"]
    assert counts["records"] == TrainingExample.objects.count() == len(jobs) + 1, counts
    assert len(lines) == counts["written"] == counts["records"] - sum(counts["left_out"].values())
    assert counts["written"] > 0
    assert os.listdir(shared / "exports") == [export.bundle_name]
