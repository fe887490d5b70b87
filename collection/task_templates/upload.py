"""A task template uploaded as a zip: unpacked safely, validated, then added to the library."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import IO

from django.conf import settings

from collection.archives import ArchiveError, safe_extract
from collection.task_templates import TaskTemplate, TemplateError, add_user_template

MAX_UNPACKED_BYTES = 20 * 1024 * 1024
MAX_FILES = 2000


def install_template_archive(archive: IO[bytes]) -> TaskTemplate:
    """Unpack a zip holding one template folder and add it to the first user template dir."""
    with tempfile.TemporaryDirectory(prefix="template-upload-") as tmp:
        try:
            root = safe_extract(
                archive, Path(tmp), max_bytes=MAX_UNPACKED_BYTES, max_files=MAX_FILES
            )
        except ArchiveError as exc:
            message = str(exc).replace("upload folder", "template folder")
            raise TemplateError(f"upload: {message}") from exc
        return add_user_template(_template_folder(root), _target_root())


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
    return Path(dirs[0])  # made by add_user_template, once the template is valid
