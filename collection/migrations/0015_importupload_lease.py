# An import upload runs under a lease, as a collection job does (`LeasedJob`): one whose worker
# died is imported again or failed by the reconciler instead of staying "running".

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("collection", "0014_importwatchfile_resume"),
    ]

    operations = [
        migrations.AddField(
            model_name="importupload",
            name="attempts",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="importupload",
            name="lease_expires_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="importupload",
            name="lease_owner",
            field=models.CharField(blank=True, max_length=100),
        ),
    ]
