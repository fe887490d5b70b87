"""A task template uploaded as a zip: unpacked safely, validated, then saved to the shared
template store (`store.py`), where every process, web or worker, on any machine, finds it.

    template = install_template_archive(request.FILES["archive"])   # TemplateError if not valid

Nothing is stored unless the upload is one valid template whose name is free.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import IO

from collection.archives import ArchiveError, safe_extract

from .library import MANIFEST, TaskTemplate, TaskTemplateLibrary, load_template, stored_template
from .manifest import TemplateError
from .store import MAX_FILES, MAX_UNPACKED_BYTES, store_template


def install_template_archive(archive: IO[bytes]) -> TaskTemplate:
    """Unpack a zip holding one template folder, validate it and store it; returns the stored
    template (from this machine's cache)."""
    with tempfile.TemporaryDirectory(prefix="template-upload-") as tmp:
        try:
            root = safe_extract(
                archive, Path(tmp), max_bytes=MAX_UNPACKED_BYTES, max_files=MAX_FILES
            )
        except ArchiveError as exc:
            message = str(exc).replace("upload folder", "template folder")
            raise TemplateError(f"upload: {message}") from exc
        template = load_template(_template_folder(root), in_category_folder=False)
        _check_name_is_free(template)
        digest = store_template(template)
    return stored_template(template.name, digest)


def _template_folder(root: Path) -> Path:
    manifests = [p for p in root.rglob(MANIFEST) if "workspace" not in p.parts]
    if len(manifests) != 1:
        raise TemplateError(
            f"upload: expected exactly one manifest.json outside workspace/, found {len(manifests)}"
        )
    return manifests[0].parent


def _check_name_is_free(template: TaskTemplate) -> None:
    library = TaskTemplateLibrary.load()
    try:
        other = library.get(template.name)
    except KeyError:
        return
    where = "built in" if other.builtin else "uploaded" if other.digest else f"at {other.root}"
    raise TemplateError(
        f"a template named {template.name!r} already exists ({where})",
        file=MANIFEST,
        field="name",
    )
