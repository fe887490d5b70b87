from django.db import migrations, models
from django.db.models.fields.json import KT
from django.db.models.functions import Substr


def copy_import_keys(apps, schema_editor):
    """Sessions imported before the column existed kept their key in metadata."""
    execution = apps.get_model("collection", "Execution")
    keyed = execution.objects.filter(metadata__has_key="import_key")
    keyed.update(import_key=Substr(KT("metadata__import_key"), 1, 255))


class Migration(migrations.Migration):
    dependencies = [
        ("collection", "0012_import_watch"),
    ]

    operations = [
        migrations.AddField(
            model_name="execution",
            name="import_key",
            field=models.CharField(blank=True, db_index=True, max_length=255),
        ),
        migrations.RunPython(copy_import_keys, migrations.RunPython.noop),
    ]
