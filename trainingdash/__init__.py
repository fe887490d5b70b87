"""trainingdash: generate, collect, review and export training data for agents.

This module stays free of third-party imports: `python3 -m trainingdash` bootstraps the
virtual environment before Django exists.
"""

from __future__ import annotations


def setup(settings_module: str = "trainingdash.settings") -> None:
    """Configure Django for a plain script that uses the Python API."""
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module)
    django.setup()
