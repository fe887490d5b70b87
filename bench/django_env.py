"""Django on a throwaway SQLite data dir, for the benchmark scripts (run from any folder)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup(prefix: str = "trainingdash-bench-", **env: str) -> Path:
    """Configure and migrate a fresh database; returns its data dir (the caller removes it)."""
    data = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ.update(
        DJANGO_SETTINGS_MODULE="trainingdash.settings",
        TRAININGDASH_DATA_DIR=str(data),
        SECRET_KEY="bench-only-" + "b" * 40,
        TRAININGDASH_HTTPS="0",
        **env,
    )
    os.environ.pop("DATABASE_URL", None)
    sys.path.insert(0, str(ROOT))
    import trainingdash

    trainingdash.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return data
