"""Transcripts uploaded in the browser: checked, saved to the shared `uploads` store, then
imported by a worker on whatever machine.

    record = receive_upload(request.FILES["file"], request.user)   # UploadError if refused
    run_import_upload(record.pk)                                    # what the worker's actor calls

The upload is stored under a generated name, `<32 hex>/<its file name>` (`ImportUpload.path`);
a zip is unpacked on the web process first, into a temporary folder, so that one with an
escaping entry or over the limits is refused before anything is stored. The worker fetches the
file into a temporary folder of its own, unpacks a zip there (with the same checks), imports,
and deletes the upload from the store. Reports name files as the uploader knows them.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from pathlib import Path, PurePath

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.storage import Storage, storages
from django.core.files.uploadedfile import UploadedFile

from collection.archives import ArchiveError, safe_extract
from collection.importers import import_paths
from collection.models import IllegalTransition, ImportUpload, this_thread

SUFFIXES = (".jsonl", ".ndjson", ".json", ".traj", ".zip")


class UploadError(ValueError):
    """An upload refused before anything was stored; the message says why."""


def upload_storage() -> Storage:
    return storages["uploads"]


def receive_upload(upload: UploadedFile, user: User | None = None) -> ImportUpload:
    """Check and store one uploaded file (or zip of files) and queue its import."""
    name = PurePath(upload.name or "").name
    limit = settings.TRAININGDASH_IMPORT_MAX_UPLOAD_BYTES
    if not name.lower().endswith(SUFFIXES):
        raise UploadError(f"{name or 'the file'}: expected one of {', '.join(SUFFIXES)}")
    size = upload.size
    if size is None:  # Django's upload handlers always set it; a hand-made UploadedFile may not
        raise UploadError(f"{name}: the upload's size is unknown")
    if size > limit:
        raise UploadError(f"{name}: {size} bytes is over the {limit}-byte upload limit")
    if _is_zip(name):
        try:
            _check_archive(upload, limit)
        except ArchiveError as exc:
            raise UploadError(f"{name}: {exc}") from exc
    stored = _save(upload, f"{uuid.uuid4().hex}/{name}")
    record = ImportUpload.objects.create(file_name=name, size=size, path=stored, created_by=user)
    record.queue()
    return record


def _is_zip(name: str) -> bool:
    return name.lower().endswith(".zip")


def _check_archive(upload: UploadedFile, limit: int) -> None:
    """Unpack into a temporary folder, removed after: what passes here unpacks on the worker."""
    with tempfile.TemporaryDirectory(prefix="upload-check-") as tmp:
        safe_extract(
            upload, Path(tmp), max_bytes=limit, max_files=settings.TRAININGDASH_IMPORT_MAX_FILES
        )
    upload.seek(0)


def _save(upload: UploadedFile, name: str) -> str:
    storage = upload_storage()
    saved = storage.save(name, upload)
    if saved != name:  # a generated name is never taken; a storage that renamed it is odd
        storage.delete(saved)
        raise UploadError(f"{upload.name}: the upload store would not keep its generated name")
    return saved


def run_import_upload(upload_id: int) -> ImportUpload | None:
    """Import what an upload holds (once) and keep the report; the upload is removed after."""
    record = ImportUpload.objects.filter(pk=upload_id).first()
    if record is None:
        return None
    owner = this_thread()
    try:
        record.acquire(owner)
    except IllegalTransition:
        return None  # a redelivered message: already imported or importing
    with tempfile.TemporaryDirectory(prefix="import-upload-") as tmp:
        try:
            folder = _fetch(record, Path(tmp))
            report = import_paths([str(folder)], user=record.created_by)
        except Exception as exc:  # noqa: BLE001 - any failure is the upload's error, shown on its page
            record.fail(f"{type(exc).__name__}: {exc}", owner=owner)
        else:
            report_json = _relative(report.model_dump(mode="json"), str(folder))
            record.finish(report=report_json, owner=owner)
        # Only the attempt that ended it removes the upload: a stale attempt (its worker paused
        # past the lease) raised IllegalTransition above, and the attempt that took over may
        # still be fetching the stored file.
        _remove(record.path)
    return record


def _fetch(record: ImportUpload, tmp: Path) -> Path:
    """The upload's files in a folder of this machine: `tmp`/files/<as uploaded>."""
    if Path(record.path).is_absolute():  # queued before uploads went through the store
        return Path(record.path)
    folder = tmp / "files"
    folder.mkdir()
    zipped = _is_zip(record.file_name)
    local = tmp / "upload.zip" if zipped else folder / record.file_name
    with upload_storage().open(record.path, "rb") as stored, local.open("wb") as out:
        shutil.copyfileobj(stored, out)
    if zipped:
        limit = settings.TRAININGDASH_IMPORT_MAX_UPLOAD_BYTES
        max_files = settings.TRAININGDASH_IMPORT_MAX_FILES
        safe_extract(local, folder, max_bytes=limit, max_files=max_files)
    return folder


def _remove(path: str) -> None:
    """Delete the upload from its store (and its generated folder, where the store has them)."""
    if Path(path).is_absolute():
        shutil.rmtree(path, ignore_errors=True)
        return
    storage = upload_storage()
    storage.delete(path)
    # A folder store keeps the emptied <hex>/ folder otherwise; not there (a store without
    # folders) or not empty: nothing to remove.
    with contextlib.suppress(OSError):
        storage.delete(str(PurePath(path).parent))


def _relative(report: dict, folder: str) -> dict:
    """Name files as the uploader knows them, not by the worker's temporary folder."""
    prefix = folder.rstrip("/") + "/"
    for key in ("sessions", "errors", "ignored"):
        for entry in report.get(key, []):
            entry["file"] = str(entry.get("file", "")).removeprefix(prefix)
    return report
