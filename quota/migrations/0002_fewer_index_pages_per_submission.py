"""A ledger entry's user loses its single-column index: ``quota_ledger_user_at_idx`` starts
with the same column (see taskcenter's migration 0019)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from taskcenter.lib.field_indexes import without_own_index


class Migration(migrations.Migration):
    dependencies = [
        ("quota", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        without_own_index(
            "quota",
            "quotaledgerentry",
            "user",
            models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="quota_entries",
                to=settings.AUTH_USER_MODEL,
                verbose_name="user",
            ),
        ),
    ]
