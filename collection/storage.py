"""The seed's storage names as thin facades over the Django system of record.

    storage = SQLiteTrainingStorage("training_data.db")   # a plain script, no Django set-up
    collector = TrainingDataCollector(storage)
    storage.get_training_examples(filters={"min_quality": 0.8, "is_golden": True}, limit=100)

Inside the dashboard (Django already configured) `TrainingStorage()` is the configured database.

A plain script may import the seed's names before it creates its storage (`trainingdash.sdk`
configures Django on import, with `configure_for_script`): the first `SQLiteTrainingStorage`
then points that script's database at its file, with the script's runtime data (sandboxes,
embedded Redis, analytics snapshots, export bundles) in the file's folder, as
`TRAININGDASH_DATA_DIR` would. `DATABASE_URL` or `TRAININGDASH_DATA_DIR` in the environment
win over the storage's choice; a second storage can't switch to another file.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from django.conf import settings

# The SQLite file a storage chose for this script's process, once it chose one.
_bound: Path | None = None
# Whether this process's Django was configured here, for a script (not by the dashboard).
_for_script = False


class TrainingStorage:
    """The configured database, with the seed's query methods."""

    def get_training_examples(
        self, filters: dict[str, Any] | None = None, limit: int | None = None
    ) -> list[Any]:
        """Examples matching the example list's filters (`min_quality`, `category`,
        `difficulty`, `is_golden`, `status`, `source`, `tool`, `q`, ...), best first."""
        from collection.queries import filter_examples

        examples = filter_examples(filters or {})
        return list(examples[:limit] if limit else examples)

    def save_task(self, definition: Any) -> Any:
        return definition.get_or_create_task()


class SQLiteTrainingStorage(TrainingStorage):
    """A SQLite file as the system of record; configures Django for a plain script."""

    def __init__(self, path: str | os.PathLike[str] = "training_data.db") -> None:
        self.path = Path(path).resolve()
        use_sqlite_file(self.path)


def configure_for_script() -> None:
    """Configure Django from the environment for a plain script, unless it is configured.

    The database may still be chosen by the script's first storage (`use_sqlite_file`).
    """
    global _for_script
    from django.apps import apps

    if apps.ready:
        return
    # A script serves no web pages: a per-process key is enough.
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    import trainingdash

    trainingdash.setup()
    _for_script = True


def use_sqlite_file(path: Path) -> None:
    """Make `path` this script's database (migrated), or check that it is already."""
    global _bound
    configure_for_script()
    database = settings.DATABASES["default"]
    if _uses(database, path):
        if _for_script and _bound is None:
            _off_the_event_loop(_migrate)
            _bound = path
        return
    if not _for_script or _bound is not None or os.environ.get("DATABASE_URL"):
        raise ValueError(
            f"Django already uses the database {database['NAME']}; SQLiteTrainingStorage("
            f"{str(path)!r}) can't switch to another file in the same process"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    _point_at(path)
    _off_the_event_loop(_migrate)
    _bound = path


def bound_database() -> Path | None:
    """The file a storage chose for this script, if one did."""
    return _bound


def is_script() -> bool:
    """Whether Django was configured here for a plain script (not by the dashboard or tests)."""
    return _for_script


def _uses(database: Mapping[str, Any], path: Path) -> bool:
    if not str(database["ENGINE"]).endswith("sqlite3"):
        return False
    return Path(str(database["NAME"])).resolve() == path


def _point_at(path: Path) -> None:
    """Switch the default database to `path` before this script uses it, as Django's test
    runner renames its test database: the connections read this same settings dict."""
    from django.db import connections

    if connections["default"].connection is not None:
        connections["default"].close()
    settings.DATABASES["default"]["NAME"] = str(path)
    if not os.environ.get("TRAININGDASH_DATA_DIR"):
        # What belongs to one database: sandboxes named by job id, the embedded Redis and
        # its queues, analytics snapshots, export bundles. (Templates stay the user's.)
        settings.DATA_DIR = path.parent
        settings.REDIS_EMBEDDED_DB = path.parent / "redis" / "trainingdash.rdb"
    if not os.environ.get("DRAMATIQ_NAMESPACE"):
        # On a shared REDIS_URL, a dashboard worker on another database must not take (and
        # fail to find) this script's jobs.
        digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
        settings.DRAMATIQ_NAMESPACE = f"trainingdash-{digest}"


def _migrate() -> None:
    from django.core.management import call_command
    from django.db import connections

    try:
        call_command("migrate", verbosity=0)
    finally:
        connections.close_all()


def _off_the_event_loop(work: Callable[[], None]) -> None:
    """Django refuses database work inside a running event loop, and the seed creates its
    storage inside `async def`: there, the work runs in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return work()
    with ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(work).result()


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
