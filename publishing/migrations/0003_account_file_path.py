"""Accounts get social-auto-upload's ``filePath`` (a unique, opaque credentials file name).

Added as Django's docs add a unique column with a per-row default: here nullable and filled row by
row; the next migration makes it unique and required (in its own transaction: PostgreSQL refuses to
alter a table with pending trigger events from the updates).
"""

import uuid

from django.db import migrations, models


def name_each_account(apps, schema_editor) -> None:
    account_model = apps.get_model("publishing", "PlatformAccount")
    for account in account_model.objects.filter(file_path__isnull=True).only("pk"):
        account_model.objects.filter(pk=account.pk).update(file_path=f"{uuid.uuid4()}.json")


class Migration(migrations.Migration):
    dependencies = [
        ("publishing", "0002_encrypt_credentials"),
    ]

    operations = [
        migrations.AddField(
            model_name="platformaccount",
            name="file_path",
            field=models.CharField(max_length=64, null=True, verbose_name="credentials file name"),
        ),
        migrations.RunPython(name_each_account, migrations.RunPython.noop),
    ]
