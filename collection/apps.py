from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CollectionConfig(AppConfig):
    name = "collection"
    verbose_name = "Collection"

    def ready(self) -> None:
        from collection.jobs.batches import BatchRules
        from collection.jobs.runner import register_hooks
        from collection.lifecycle import FINISH_HOOKS
        from collection.roles import sync_roles
        from collection.sessions.session_store import join_mirror

        # Batches add their rules to running jobs without the runner importing batches.
        register_hooks(BatchRules())
        # A mirrored transcript joins its live session when that finishes (lifecycle.finish).
        if join_mirror not in FINISH_HOOKS:
            FINISH_HOOKS.append(join_mirror)

        # Sent once per app: a model's permissions exist only after its app's post_migrate.
        post_migrate.connect(sync_roles, dispatch_uid="collection-sync-roles")
        # On SQLite a migration that rebuilds the example table drops its triggers (search,
        # category).
        post_migrate.connect(_ensure_search, dispatch_uid="collection-search-engine")


def _ensure_search(using: str = "default", **_: Any) -> None:
    from django.db import connections

    from collection.example_category import ensure_triggers
    from collection.search import ensure_engine

    ensure_engine(connections[using])
    ensure_triggers(connections[using])
