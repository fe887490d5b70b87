"""Full-text search of examples: SQLite's FTS5 table and triggers, or PostgreSQL's GIN index on
the search text's tsvector (see collection.search), then search_text for the examples stored so
far, in batches."""

from django.db import migrations

from collection.search import build_search_text, ensure_engine

BATCH = 500


def backfill(apps, schema_editor):
    Example = apps.get_model("collection", "TrainingExample")
    Message = apps.get_model("collection", "Message")
    last = 0
    while True:
        rows = list(
            Example.objects.filter(pk__gt=last)
            .order_by("pk")
            .select_related("execution__task")[:BATCH]
        )
        if not rows:
            return
        last = rows[-1].pk
        payloads = {row.execution_id: [] for row in rows}
        messages = (
            Message.objects.filter(execution_id__in=payloads, type__in=("user", "assistant"))
            .order_by("execution_id", "seq")
            .values_list("execution_id", "payload")
        )
        for execution_id, payload in messages:
            payloads[execution_id].append(payload)
        for row in rows:
            prompt = str(row.execution.metadata.get("prompt") or "")
            row.search_text = build_search_text(
                row.execution.task.name, prompt, payloads[row.execution_id]
            )
        Example.objects.bulk_update(rows, ["search_text"])


def create_engine(apps, schema_editor):
    ensure_engine(schema_editor.connection)


def drop_engine(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        if schema_editor.connection.vendor == "postgresql":
            cursor.execute("DROP INDEX IF EXISTS collection_example_search_idx")
        elif schema_editor.connection.vendor == "sqlite":
            for suffix in ("insert", "delete", "update"):
                cursor.execute(f"DROP TRIGGER IF EXISTS collection_trainingexample_fts_{suffix}")
            cursor.execute("DROP TABLE IF EXISTS collection_trainingexample_fts")


class Migration(migrations.Migration):
    dependencies = [
        ("collection", "0007_review_records"),
    ]

    operations = [
        migrations.RunPython(create_engine, drop_engine),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
