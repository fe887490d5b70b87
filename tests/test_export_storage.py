"""Export bundles through Django's storage API (`storages["exports"]`): a worker and a web
process with different data folders share bundles through one storage; a storage without
local paths works the same; a save that fails leaves nothing stored; the setting is checked."""

from __future__ import annotations

import errno
import hashlib
import io
import shutil
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import FileSystemStorage, storages
from django.test import Client
from django.utils import timezone

from collection.models import JobStatus, TaskStatus, TrainingExample
from exports.bundles import open_bundle
from exports.jobs import bundle_name, prune_expired, run_export_job
from exports.models import ExportJob
from exports.options import ExportOptions
from tests.factories import make_example, make_execution, make_task, make_trajectory
from trainingdash.settings import _export_storage, _shared_storage

pytestmark = pytest.mark.django_db


def trajectories(n: int) -> list[TrainingExample]:
    task = make_task(category="debugging")
    return [
        make_example(make_trajectory(make_execution(task, status=TaskStatus.IN_PROGRESS)))
        for _ in range(n)
    ]


def start(format_name: str = "jsonl") -> ExportJob:
    return ExportJob.objects.create(format=format_name, options=ExportOptions().model_dump())


def use_exports_storage(settings: Any, backend: str, **options: Any) -> None:
    settings.STORAGES = settings.STORAGES | {"exports": {"BACKEND": backend, "OPTIONS": options}}


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def download(client: Client, job: ExportJob) -> bytes:
    response = client.get(f"/exports/{job.pk}/download/")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{job.bundle_name}"'
    assert response["X-Content-Type-Options"] == "nosniff"
    return b"".join(response.streaming_content)  # type: ignore[attr-defined]


def assert_checksums_hold(bundle: bytes) -> None:
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        manifest = orjson.loads(archive.read("manifest.json"))
        for name, digest in manifest["files"].items():
            assert hashlib.sha256(archive.read(name)).hexdigest() == digest["sha256"], name


def test_a_bundle_built_by_a_worker_is_downloaded_by_a_web_process_with_another_data_folder(
    settings, tmp_path, admin_user, client
):
    shared, worker, web = tmp_path / "shared", tmp_path / "worker", tmp_path / "web"
    use_exports_storage(settings, "django.core.files.storage.FileSystemStorage", location=shared)
    trajectories(3)
    job = start()
    # What a worker killed while saving left under the name: replaced, not kept beside it.
    shared.mkdir()
    (shared / bundle_name(job)).write_bytes(b"PK\x03\x04half")

    settings.DATA_DIR = worker
    finished = run_export_job(job.pk)
    assert finished is not None
    assert finished.status == JobStatus.SUCCEEDED, finished.error
    assert files_under(shared) == [finished.bundle_name]
    assert finished.size == (shared / finished.bundle_name).stat().st_size
    assert files_under(worker) == []  # built there, stored, and the local copy removed
    shutil.rmtree(worker)  # the web process can't read the worker's disk

    settings.DATA_DIR = web
    client.force_login(admin_user)
    bundle = download(client, finished)
    assert bundle == (shared / finished.bundle_name).read_bytes()
    assert_checksums_hold(bundle)
    assert not worker.exists() and not (web / "exports").exists()


def test_a_storage_without_local_paths_stores_serves_and_prunes_bundles(
    settings, admin_user, client
):
    use_exports_storage(settings, "django.core.files.storage.InMemoryStorage")
    storage = storages["exports"]  # not a folder on disk, as S3 is not
    trajectories(2)
    job = run_export_job(start("huggingface").pk)
    assert job is not None
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert storage.listdir("") == ([], [job.bundle_name])
    client.force_login(admin_user)
    assert_checksums_hold(download(client, job))

    ExportJob.objects.filter(pk=job.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert prune_expired() == 1
    assert storage.listdir("") == ([], [])
    assert client.get(f"/exports/{job.pk}/download/").status_code == 410


@pytest.mark.parametrize(
    "name", ["../export-1-jsonl.zip", "sub/export-1-jsonl.zip", ".export-1-jsonl.zip", "a\\b.zip"]
)
def test_a_name_that_is_not_one_of_ours_is_never_opened_from_a_remote_storage(settings, name):
    use_exports_storage(settings, "django.core.files.storage.InMemoryStorage")
    storages["exports"].save("sub/export-1-jsonl.zip", io.BytesIO(b"PK"))
    assert open_bundle(name) is None
    assert open_bundle("export-1-jsonl.zip") is None  # not there: nothing, not an error


class FullDiskStorage(FileSystemStorage):
    """A shared store that runs out of space halfway through a save."""

    def _save(self, name: str, content: Any) -> str:
        Path(self.location).mkdir(parents=True, exist_ok=True)
        Path(self.path(name)).write_bytes(content.read(100))
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_bundle_that_fails_to_save_leaves_nothing_stored_and_the_job_failed(settings, tmp_path):
    shared = tmp_path / "shared"
    use_exports_storage(settings, f"{__name__}.FullDiskStorage", location=shared)
    settings.DATA_DIR = tmp_path / "worker"
    trajectories(2)
    job = run_export_job(start().pk)
    assert job is not None
    job.refresh_from_db()
    assert (job.status, job.bundle_name) == (JobStatus.FAILED, "")
    assert job.error == "OSError: [Errno 28] No space left on device"
    assert files_under(shared) == [] and files_under(tmp_path / "worker") == []


def test_the_export_storage_is_the_data_folder_unless_a_backend_is_set(monkeypatch):
    monkeypatch.delenv("TRAININGDASH_EXPORT_STORAGE", raising=False)
    monkeypatch.delenv("TRAININGDASH_SHARED_STORAGE", raising=False)
    assert _export_storage() == {
        "BACKEND": "trainingdash.storage.DataFolderStorage",
        "OPTIONS": {"folder": "exports"},
    }
    monkeypatch.setenv("TRAININGDASH_EXPORT_STORAGE", "storages.backends.s3.S3Storage")
    monkeypatch.setenv("TRAININGDASH_EXPORT_STORAGE_OPTIONS", '{"bucket_name": "exports"}')
    assert _export_storage() == {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"bucket_name": "exports"},
    }
    for bad in ('["exports"]', "{bucket"):
        monkeypatch.setenv("TRAININGDASH_EXPORT_STORAGE_OPTIONS", bad)
        with pytest.raises(ImproperlyConfigured, match="TRAININGDASH_EXPORT_STORAGE_OPTIONS"):
            _export_storage()


def test_one_shared_storage_setting_backs_exports_templates_and_uploads(monkeypatch):
    monkeypatch.delenv("TRAININGDASH_EXPORT_STORAGE", raising=False)
    assert _shared_storage("uploads") == {
        "BACKEND": "trainingdash.storage.DataFolderStorage",
        "OPTIONS": {"folder": "uploads"},
    }
    monkeypatch.setenv("TRAININGDASH_SHARED_STORAGE", "storages.backends.s3.S3Storage")
    monkeypatch.setenv(
        "TRAININGDASH_SHARED_STORAGE_OPTIONS", '{"bucket_name": "team", "location": "td/"}'
    )
    s3 = {"BACKEND": "storages.backends.s3.S3Storage"}
    assert _export_storage() == s3 | {"OPTIONS": {"bucket_name": "team", "location": "td/exports"}}
    assert _shared_storage("uploads") == s3 | {
        "OPTIONS": {"bucket_name": "team", "location": "td/uploads"}
    }
    monkeypatch.setenv("TRAININGDASH_SHARED_STORAGE_OPTIONS", "")  # no location: a top prefix
    assert _shared_storage("uploaded-templates")["OPTIONS"] == {"location": "uploaded-templates"}
    monkeypatch.setenv("TRAININGDASH_EXPORT_STORAGE", "django.core.files.storage.InMemoryStorage")
    assert _export_storage() == {  # the exports' own setting still wins
        "BACKEND": "django.core.files.storage.InMemoryStorage",
        "OPTIONS": {},
    }
    monkeypatch.setenv("TRAININGDASH_SHARED_STORAGE_OPTIONS", "[1]")
    with pytest.raises(ImproperlyConfigured, match="TRAININGDASH_SHARED_STORAGE_OPTIONS"):
        _shared_storage("uploads")


def test_the_default_storage_follows_the_data_folder(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    assert storages["exports"].path("export-1-jsonl.zip") == str(
        tmp_path / "exports" / "export-1-jsonl.zip"
    )
