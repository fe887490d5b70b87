"""`TrainingExample.category`: the example's task's category, copied onto the example by the
database itself, so that the list's category filter and its sort use one index
(`example_category_quality_idx`) instead of joining example -> execution -> task.

    ensure_triggers(connection)   # idempotent; migration 0016 calls it
    backfill(connection)          # every example's category from its task, once

Triggers, not application code, keep the copy right, whoever writes: a new example (save or
bulk_create), an example moved to another execution, an execution moved to another task
(`collection.sessions.task_inference`), and a task whose category changes (admin, imports'
categoriser) all update it in the same statement. The application never sets it.

On SQLite a migration that rebuilds the example table drops its triggers: `ensure_triggers`
runs again after every migrate (as `collection.search.ensure_engine` does).
"""

from __future__ import annotations

from typing import Any

TASK_CATEGORY = (
    "coalesce((SELECT t.category FROM collection_execution e JOIN collection_task t "
    "ON t.id = e.task_id WHERE e.id = {execution}), '')"
)

POSTGRESQL = [
    f"""
CREATE OR REPLACE FUNCTION collection_example_category() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.category := {TASK_CATEGORY.format(execution="NEW.execution_id")};
    RETURN NEW;
END $$""",
    "DROP TRIGGER IF EXISTS collection_example_category ON collection_trainingexample",
    # UPDATE OF category: Django's save() writes every column (an unsaved copy's category is "").
    """
CREATE TRIGGER collection_example_category
BEFORE INSERT OR UPDATE OF execution_id, category ON collection_trainingexample
FOR EACH ROW EXECUTE FUNCTION collection_example_category()""",
    """
CREATE OR REPLACE FUNCTION collection_task_category() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE collection_trainingexample x SET category = NEW.category
    FROM collection_execution e WHERE e.task_id = NEW.id AND x.execution_id = e.id;
    RETURN NULL;
END $$""",
    "DROP TRIGGER IF EXISTS collection_task_category ON collection_task",
    """
CREATE TRIGGER collection_task_category AFTER UPDATE OF category ON collection_task
FOR EACH ROW WHEN (OLD.category IS DISTINCT FROM NEW.category)
EXECUTE FUNCTION collection_task_category()""",
    """
CREATE OR REPLACE FUNCTION collection_execution_category() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE collection_trainingexample SET category = '' WHERE execution_id = NEW.id;
    RETURN NULL;
END $$""",
    "DROP TRIGGER IF EXISTS collection_execution_category ON collection_execution",
    # Setting the example's category fires its own trigger, which reads the new task's.
    """
CREATE TRIGGER collection_execution_category AFTER UPDATE OF task_id ON collection_execution
FOR EACH ROW WHEN (OLD.task_id IS DISTINCT FROM NEW.task_id)
EXECUTE FUNCTION collection_execution_category()""",
]

_SQLITE_SET = (
    "UPDATE collection_trainingexample SET category = "
    f"{TASK_CATEGORY.format(execution='NEW.execution_id')} WHERE id = NEW.id"
)
SQLITE = [
    f"""
CREATE TRIGGER IF NOT EXISTS collection_example_category_insert
AFTER INSERT ON collection_trainingexample BEGIN {_SQLITE_SET}; END""",
    f"""
CREATE TRIGGER IF NOT EXISTS collection_example_category_update
AFTER UPDATE OF execution_id, category ON collection_trainingexample
WHEN NEW.category IS NOT {TASK_CATEGORY.format(execution="NEW.execution_id")}
BEGIN {_SQLITE_SET}; END""",
    """
CREATE TRIGGER IF NOT EXISTS collection_task_category
AFTER UPDATE OF category ON collection_task WHEN OLD.category IS NOT NEW.category BEGIN
    UPDATE collection_trainingexample SET category = NEW.category
    WHERE execution_id IN (SELECT id FROM collection_execution WHERE task_id = NEW.id);
END""",
    f"""
CREATE TRIGGER IF NOT EXISTS collection_execution_category
AFTER UPDATE OF task_id ON collection_execution WHEN OLD.task_id IS NOT NEW.task_id BEGIN
    UPDATE collection_trainingexample SET category =
        {TASK_CATEGORY.format(execution="NEW.id")} WHERE execution_id = NEW.id;
END""",
]


def ensure_triggers(connection: Any) -> None:
    """Create (or replace) the triggers that keep `TrainingExample.category`."""
    statements = {"postgresql": POSTGRESQL, "sqlite": SQLITE}.get(connection.vendor, [])
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def backfill(connection: Any) -> None:
    """Every example's category from its task (before the triggers exist: one statement)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # a join, not a lookup per row
            cursor.execute(
                "UPDATE collection_trainingexample x SET category = t.category "
                "FROM collection_execution e JOIN collection_task t ON t.id = e.task_id "
                "WHERE e.id = x.execution_id"
            )
            return
        cursor.execute(
            "UPDATE collection_trainingexample SET category = "
            f"{TASK_CATEGORY.format(execution='collection_trainingexample.execution_id')}"
        )


def drop_triggers(connection: Any) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for table, name in (
                ("collection_trainingexample", "collection_example_category"),
                ("collection_task", "collection_task_category"),
                ("collection_execution", "collection_execution_category"),
            ):
                cursor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
                cursor.execute(f"DROP FUNCTION IF EXISTS {name}()")
        elif connection.vendor == "sqlite":
            for name in (
                "collection_example_category_insert",
                "collection_example_category_update",
                "collection_task_category",
                "collection_execution_category",
            ):
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
