from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("collection", "0013_execution_import_key"),
    ]

    operations = [
        migrations.AddField(
            model_name="importwatchfile",
            name="resume",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="importwatchfile",
            name="running",
            field=models.BooleanField(default=False),
        ),
    ]
