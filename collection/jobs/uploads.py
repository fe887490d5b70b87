"""Transcripts uploaded in the browser: stored safely, then imported by a worker."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path, PurePath

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from collection.archives import ArchiveError, safe_extract
from collection.models import ImportUpload, JobStatus

SUFFIXES = (".jsonl", ".ndjson", ".json", ".traj", ".zip")


class UploadError(ValueError):
    """An upload refused before anything was stored; the message says why."""


def receive_upload(upload: UploadedFile, user: object = None) -> ImportUpload:
    """Check and store one uploaded file (or zip of files) and queue its import."""
    name = PurePath(upload.name or "").name
    limit = settings.TRAININGDASH_IMPORT_MAX_UPLOAD_BYTES
    if not name.lower().endswith(SUFFIXES):
        raise UploadError(f"{name or 'the file'}: expected one of {', '.join(SUFFIXES)}")
    if upload.size > limit:
        raise UploadError(f"{name}: {upload.size} bytes is over the {limit}-byte upload limit")
    folder = Path(settings.DATA_DIR) / "uploads" / uuid.uuid4().hex
    try:
        _store(upload, name, folder, limit)
    except ArchiveError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise UploadError(f"{name}: {exc}") from exc
    record = ImportUpload.objects.create(
        file_name=name, size=upload.size, path=str(folder), uploaded_by=user
    )
    transaction.on_commit(lambda: _enqueue(record.pk))
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


def _enqueue(upload_id: int) -> None:
    from collection.jobs.actors import import_upload

    import_upload.send(upload_id)


def run_import_upload(upload_id: int) -> ImportUpload | None:
    """Import what an upload holds (once) and keep the report; the files are removed after."""
    from collection.importers import import_paths

    taken = ImportUpload.objects.filter(pk=upload_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING
    )
    if not taken:
        return None  # a redelivered message: already imported or importing
    record = ImportUpload.objects.get(pk=upload_id)
    try:
        report = import_paths([record.path], user=record.uploaded_by)
    except Exception as exc:
        record.status, record.error = JobStatus.FAILED, f"{type(exc).__name__}: {exc}"
    else:
        record.status, record.report = (
            JobStatus.SUCCEEDED,
            _relative(report.model_dump(mode="json"), record.path),
        )
    record.finished_at = timezone.now()
    record.save()
    shutil.rmtree(record.path, ignore_errors=True)
    return record


def _relative(report: dict, folder: str) -> dict:
    """Name files as the uploader knows them, not by the server's upload folder."""
    prefix = folder.rstrip("/") + "/"
    for key in ("sessions", "errors", "ignored"):
        for entry in report.get(key, []):
            entry["file"] = str(entry.get("file", "")).removeprefix(prefix)
    return report
