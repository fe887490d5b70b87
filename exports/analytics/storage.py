"""The seed's `DuckDBTrainingStorage`: the system of record with DuckDB analytics beside it.

    storage = DuckDBTrainingStorage("training_data.duckdb")   # a plain script, no Django set-up
    analytics = storage.get_analytics()
    print(f"Total examples: {analytics['total_examples']}")
    print(f"Success rate: {analytics['success_rate']:.1%}")

`path` is where the analytics snapshot (Parquet files, `exports.analytics.snapshot`) is kept.
Examples themselves live in the Django database as everywhere else: in a script whose storage
has not chosen a database yet, a SQLite file next to `path` (same name, ".db") becomes the
system of record, as `SQLiteTrainingStorage` does it; otherwise (an earlier storage in the
script, or the dashboard) the database in use.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from collection.storage import (
    SQLiteTrainingStorage,
    TrainingStorage,
    bound_database,
    configure_for_script,
    is_script,
)


class DuckDBTrainingStorage(TrainingStorage):
    """Storage whose `get_analytics()` returns the seed's dict of figures and breakdowns."""

    def __init__(self, path: str | os.PathLike[str] = "training_data.duckdb") -> None:
        self.path = Path(path).resolve()
        configure_for_script()
        if is_script() and bound_database() is None:
            SQLiteTrainingStorage(self.path.with_suffix(".db"))

    def get_analytics(self, filters: dict[str, Any] | None = None) -> dict[str, Any]:
        """The summary figures (`total_examples`, `success_rate`, `golden_examples`,
        `avg_quality`, ...) and every breakdown as a list of dicts under its table name."""
        from collection.queries import ExampleFilters
        from exports.analytics.engine import get_analytics

        analytics = get_analytics(ExampleFilters(**(filters or {})), directory=self.path)
        result: dict[str, Any] = dict(analytics.summary)
        result["average_quality"] = analytics.summary["avg_quality"]
        for name, table in analytics.tables.items():
            result[name] = table.as_dicts()
        return result
