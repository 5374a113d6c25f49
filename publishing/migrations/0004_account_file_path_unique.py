"""``filePath`` unique and required; a finished publish record outlives its account (it keeps
the account's name and platform), as social-auto-upload deletes accounts outright."""

import django.db.models.deletion
from django.db import migrations, models

import publishing.models


class Migration(migrations.Migration):
    dependencies = [
        ("publishing", "0003_account_file_path"),
    ]

    operations = [
        migrations.AlterField(
            model_name="platformaccount",
            name="file_path",
            field=models.CharField(
                default=publishing.models.new_account_file_path,
                max_length=64,
                unique=True,
                verbose_name="credentials file name",
            ),
        ),
        migrations.AlterField(
            model_name="publishtaskrecord",
            name="account",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="publish_records",
                to="publishing.platformaccount",
                verbose_name="account",
            ),
        ),
    ]
