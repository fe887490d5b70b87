"""Task templates: folders of data (manifest, workspace, solution, hidden checks) that become
tasks and collection jobs. See `library.py` for the layout and `manifest.py` for the fields."""

from __future__ import annotations

from .library import (
    BUILTIN_DIR,
    TaskTemplate,
    TaskTemplateLibrary,
    add_user_template,
    load_template,
)
from .manifest import CATEGORIES, TemplateError, TemplateManifest, Variation

__all__ = [
    "BUILTIN_DIR",
    "CATEGORIES",
    "TaskTemplate",
    "TaskTemplateLibrary",
    "TemplateError",
    "TemplateManifest",
    "Variation",
    "add_user_template",
    "load_template",
]
