"""Uploaded task templates in the shared `templates` store, and this machine's cache of them.

    digest = store_template(template)        # a validated template -> "<name>.<sha256>.zip"
    entries, errors = stored_entries()        # (name, digest) of every stored one
    folder = fetch("fix_it", digest)          # this machine's copy, fetched when missing

Files only: the library (`library.stored_template`) loads templates from the fetched folders.

The store holds one zip per template, named by the template and the sha256 of the zip's bytes
(the zip is built deterministically, so the same files give the same digest). Every process, web
or worker, on any machine, reads a template from its own cache folder
(DATA_DIR/cache/templates/<digest>/<category>/<name>/), fetched from the store when missing: a
changed template has another digest and is fetched anew, and a fetch unpacks into a temporary
folder renamed into place, so processes fetching at once never see half a template.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Protocol

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages

from collection.archives import ArchiveError, safe_extract

from .manifest import TemplateError

MAX_UNPACKED_BYTES = 20 * 1024 * 1024
MAX_FILES = 2000
STORED_NAME = re.compile(r"(?P<name>[a-z][a-z0-9_]*)\.(?P<digest>[0-9a-f]{64})\.zip")
# Zip entries carry this timestamp: the same files always make the same bytes.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
SKIPPED = ("__pycache__",)


class TemplateFiles(Protocol):
    """What storing needs of a template (a `library.TaskTemplate`)."""

    @property
    def root(self) -> Path: ...

    @property
    def category(self) -> str: ...

    @property
    def name(self) -> str: ...


def template_storage() -> Storage:
    return storages["templates"]


def cache_dir() -> Path:
    """This machine's copies of stored templates, one folder per digest."""
    return Path(settings.DATA_DIR) / "cache" / "templates"


def stored_name(name: str, digest: str) -> str:
    return f"{name}.{digest}.zip"


def archive(template: TemplateFiles) -> bytes:
    """The template's files as a zip of <category>/<name>/..., byte-identical for equal files."""
    buffer = io.BytesIO()
    prefix = f"{template.category}/{template.name}"
    files = sorted(
        p
        for p in template.root.rglob("*")
        if p.is_file() and not any(part in SKIPPED for part in p.parts) and p.suffix != ".pyc"
    )
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            info = zipfile.ZipInfo(f"{prefix}/{path.relative_to(template.root).as_posix()}")
            info.date_time = ZIP_EPOCH
            info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    return buffer.getvalue()


def store_template(template: TemplateFiles) -> str:
    """Save a validated template to the store (once: the same files are the same name);
    returns its digest."""
    data = archive(template)
    digest = hashlib.sha256(data).hexdigest()
    name = stored_name(template.name, digest)
    storage = template_storage()
    if not storage.exists(name):
        saved = storage.save(name, ContentFile(data, name=name))
        if saved != name:  # saved beside a copy that appeared meanwhile: keep one
            storage.delete(saved)
    return digest


def stored_entries() -> tuple[list[tuple[str, str]], list[TemplateError]]:
    """(name, digest) of every template in the store; a store that can't be listed is an
    error, as a malformed template folder is."""
    try:
        names = template_storage().listdir("")[1]
    except FileNotFoundError:  # a folder store nothing was uploaded to yet
        return [], []
    except (OSError, NotImplementedError) as exc:
        return [], [TemplateError(f"the template store could not be listed: {exc}")]
    found = [STORED_NAME.fullmatch(file_name) for file_name in sorted(names)]
    return [(match["name"], match["digest"]) for match in found if match], []


def fetch(name: str, digest: str) -> Path:
    """The cache folder of the stored template `name` with `digest`, fetched when missing."""
    final = cache_dir() / digest
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{digest[:12]}-", dir=final.parent) as tmp:
        data = _read(stored_name(name, digest))
        if hashlib.sha256(data).hexdigest() != digest:
            raise TemplateError(f"the stored template {stored_name(name, digest)} is corrupt")
        unpacked = Path(tmp) / "unpacked"
        try:
            safe_extract(
                io.BytesIO(data), unpacked, max_bytes=MAX_UNPACKED_BYTES, max_files=MAX_FILES
            )
            os.rename(unpacked, final)  # atomic: whole, or not there
        except ArchiveError as exc:
            raise TemplateError(f"the stored template {stored_name(name, digest)}: {exc}") from exc
        except OSError:
            if not final.is_dir():  # else another process fetched it first: use theirs
                raise
    return final


def _read(name: str) -> bytes:
    storage = template_storage()
    try:
        if storage.size(name) > MAX_UNPACKED_BYTES:
            raise TemplateError(f"the stored template {name} is over {MAX_UNPACKED_BYTES} bytes")
        with storage.open(name, "rb") as stored:
            return stored.read()
    except (OSError, FileNotFoundError) as exc:
        raise TemplateError(f"the stored template {name} could not be read: {exc}") from exc
