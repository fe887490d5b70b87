"""The seed's storage names as thin facades over the Django system of record.

    storage = SQLiteTrainingStorage("training_data.db")   # a plain script, no Django set-up
    collector = TrainingDataCollector(storage)
    storage.get_training_examples(filters={"min_quality": 0.8, "is_golden": True}, limit=100)

Inside the dashboard (Django already configured) `TrainingStorage()` is the configured database.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings


class TrainingStorage:
    """The configured database, with the seed's query methods."""

    def get_training_examples(
        self, filters: dict[str, Any] | None = None, limit: int | None = None
    ) -> list[Any]:
        from collection.queries import filter_examples

        examples = filter_examples(filters or {})
        return list(examples[:limit] if limit else examples)

    def save_task(self, definition: Any) -> Any:
        return definition.get_or_create_task()


class SQLiteTrainingStorage(TrainingStorage):
    """A SQLite file as the system of record; configures Django for a plain script."""

    def __init__(self, path: str | os.PathLike[str] = "training_data.db") -> None:
        self.path = Path(path).resolve()
        if not settings.configured:
            os.environ.setdefault("DATABASE_URL", f"sqlite:///{self.path}")
            os.environ.setdefault("TRAININGDASH_DATA_DIR", str(self.path.parent))
            # A script serves no web pages: a per-process key is enough.
            os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
            import trainingdash

            trainingdash.setup()
            from django.core.management import call_command

            call_command("migrate", verbosity=0)
        configured = Path(str(settings.DATABASES["default"]["NAME"])).resolve()
        if configured != self.path:
            raise ValueError(
                f"Django already uses the database {configured}; SQLiteTrainingStorage("
                f"{str(path)!r}) can't switch to another file in the same process"
            )


def seed_storage(storage: TrainingStorage | None) -> TrainingStorage:
    """The storage a seed facade (`TrainingDataCollector(storage)` ...) was given.

    Creating a storage chose the database (a `SQLiteTrainingStorage` configures Django); the
    facades check that what they were given is one, so a wrong argument fails at once.
    """
    if storage is None:
        return TrainingStorage()
    if not isinstance(storage, TrainingStorage):
        raise TypeError(f"expected a TrainingStorage, got {type(storage).__name__}")
    return storage
