"""Task templates: folders of data (manifest, workspace, solution, hidden checks) that become
tasks and collection jobs. See `library.py` for the layout and `manifest.py` for the fields.

The names below load on first use (PEP 562): the verifier helpers in this package
(`verify_untouched`, `verify_mutants`) run as `python -m` in a sandbox without Django.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the lazy names are, for type checkers
    from .library import (
        BUILTIN_DIR,
        TaskTemplate,
        TaskTemplateLibrary,
        add_user_template,
        load_template,
    )
    from .manifest import CATEGORIES, TemplateError, TemplateManifest, Variation
    from .resolve import resolve_spec

_EXPORTS = {
    "BUILTIN_DIR": ".library",
    "TaskTemplate": ".library",
    "TaskTemplateLibrary": ".library",
    "add_user_template": ".library",
    "load_template": ".library",
    "CATEGORIES": ".manifest",
    "TemplateError": ".manifest",
    "TemplateManifest": ".manifest",
    "Variation": ".manifest",
    "resolve_spec": ".resolve",
}
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
    "resolve_spec",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name], __name__), name)
