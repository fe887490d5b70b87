"""The example's task category on the example, kept by database triggers
(collection.example_category), with an index for a category filter in the list's order; the
analytics snapshot's (updated_at, id) index (replacing the one on updated_at alone); a partial
index on the reviewed examples for the review queue's progress."""

from django.db import migrations, models


def add_category(apps, schema_editor):
    from collection.example_category import backfill, ensure_triggers

    backfill(schema_editor.connection)
    ensure_triggers(schema_editor.connection)


def drop_category_triggers(apps, schema_editor):
    from collection.example_category import drop_triggers

    drop_triggers(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("collection", "0015_importupload_lease"),
    ]

    operations = [
        # Table changes first: on SQLite they rebuild the table (and drop its triggers).
        migrations.AddField(
            model_name="trainingexample",
            name="category",
            field=models.CharField(blank=True, default="", editable=False, max_length=64),
        ),
        migrations.AlterField(
            model_name="trainingexample",
            name="updated_at",
            field=models.DateTimeField(auto_now=True),
        ),
        # Filled before its index exists; the triggers keep it from then on.
        migrations.RunPython(add_category, drop_category_triggers),
        migrations.AddIndex(
            model_name="trainingexample",
            index=models.Index(
                fields=["category", "quality_score", "id"], name="example_category_quality_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="trainingexample",
            index=models.Index(fields=["updated_at", "id"], name="example_updated_id_idx"),
        ),
        migrations.AddIndex(
            model_name="trainingexample",
            index=models.Index(
                condition=models.Q(("reviewed_at__isnull", False)),
                fields=["reviewed_at"],
                name="example_reviewed_idx",
            ),
        ),
    ]
