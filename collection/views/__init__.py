"""The pages, by topic: examples (dashboard, list, detail, review), batches, templates,
imports and health. `collection.urls` routes to the modules.
"""

from __future__ import annotations

# The project's urls.py routes /healthz outside this app, through the package.
from collection.views.health import healthz

__all__ = ["healthz"]
