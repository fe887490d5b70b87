"""Transcripts uploaded in the browser: stored safely, then imported by a worker."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path, PurePath

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile

from collection.archives import ArchiveError, safe_extract
from collection.importers import import_paths
from collection.models import IllegalTransition, ImportUpload

SUFFIXES = (".jsonl", ".ndjson", ".json", ".traj", ".zip")


class UploadError(ValueError):
    """An upload refused before anything was stored; the message says why."""


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
    folder = Path(settings.DATA_DIR) / "uploads" / uuid.uuid4().hex
    try:
        _store(upload, name, folder, limit)
    except ArchiveError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise UploadError(f"{name}: {exc}") from exc
    record = ImportUpload.objects.create(
        file_name=name, size=size, path=str(folder), created_by=user
    )
    record.queue()
    return record


def _store(upload: UploadedFile, name: str, folder: Path, limit: int) -> None:
    if name.lower().endswith(".zip"):
        max_files = settings.TRAININGDASH_IMPORT_MAX_FILES
        safe_extract(upload, folder, max_bytes=limit, max_files=max_files)
        return
    folder.mkdir(parents=True)
    with (folder / name).open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)


def run_import_upload(upload_id: int) -> ImportUpload | None:
    """Import what an upload holds (once) and keep the report; the files are removed after."""
    record = ImportUpload.objects.filter(pk=upload_id).first()
    if record is None:
        return None
    try:
        record.acquire()
    except IllegalTransition:
        return None  # a redelivered message: already imported or importing
    try:
        report = import_paths([record.path], user=record.created_by)
    except Exception as exc:  # noqa: BLE001 - any failure is the upload's error, shown on its page
        record.fail(f"{type(exc).__name__}: {exc}")
    else:
        record.finish(report=_relative(report.model_dump(mode="json"), record.path))
    finally:
        shutil.rmtree(record.path, ignore_errors=True)
    return record


def _relative(report: dict, folder: str) -> dict:
    """Name files as the uploader knows them, not by the server's upload folder."""
    prefix = folder.rstrip("/") + "/"
    for key in ("sessions", "errors", "ignored"):
        for entry in report.get(key, []):
            entry["file"] = str(entry.get("file", "")).removeprefix(prefix)
    return report
