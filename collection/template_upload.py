"""A task template uploaded as a zip: unpacked safely, validated, then added to the library."""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO

from django.conf import settings

from collection.task_templates import TaskTemplate, TemplateError, add_user_template

MAX_UNPACKED_BYTES = 20 * 1024 * 1024
MAX_FILES = 2000


def install_template_archive(archive: IO[bytes]) -> TaskTemplate:
    """Unpack a zip holding one template folder and add it to the first user template dir.

    Entries that would land outside the unpack folder (absolute paths, `..`), links, and
    archives too large to unpack are refused before anything is written.
    """
    try:
        with zipfile.ZipFile(archive) as zf:
            members = _checked_members(zf)
            with tempfile.TemporaryDirectory(prefix="template-upload-") as tmp:
                root = Path(tmp)
                for member in members:
                    zf.extract(member, root)
                return add_user_template(_template_folder(root), _target_root())
    except zipfile.BadZipFile as exc:
        raise TemplateError(f"upload: not a zip archive ({exc})") from exc


def _checked_members(zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    members = zf.infolist()
    if len(members) > MAX_FILES:
        raise TemplateError(f"upload: {len(members)} files, more than {MAX_FILES}")
    if sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
        raise TemplateError(f"upload: unpacks to more than {MAX_UNPACKED_BYTES} bytes")
    for m in members:
        path = PurePosixPath(m.filename)
        if path.is_absolute() or ".." in path.parts or "\\" in m.filename:
            raise TemplateError(f"upload: {m.filename}: path escapes the template folder")
        if (m.external_attr >> 16) & 0o170000 == 0o120000:
            raise TemplateError(f"upload: {m.filename}: links are not allowed")
    return members


def _template_folder(root: Path) -> Path:
    manifests = [p for p in root.rglob("manifest.json") if "workspace" not in p.parts]
    if len(manifests) != 1:
        raise TemplateError(
            f"upload: expected exactly one manifest.json outside workspace/, found {len(manifests)}"
        )
    return manifests[0].parent


def _target_root() -> Path:
    dirs = settings.TRAININGDASH_TEMPLATE_DIRS
    if not dirs:
        raise TemplateError("uploads need TRAININGDASH_TEMPLATE_DIRS to name a folder")
    target = Path(dirs[0])
    target.mkdir(parents=True, exist_ok=True)
    return target
