"""Quota moves to its own app: the tables are renamed for the ``quota`` app, rows untouched.

Only Django's model state drops the two models here; the database renames their tables, which
``quota``'s first migration then adopts (and it moves their content types and permissions).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("taskcenter", "0011_hashed_api_tokens"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.AlterModelTable("quotaaccount", "quota_quotabalance"),
                migrations.AlterModelTable("quotaledgerentry", "quota_quotaledgerentry"),
            ],
            state_operations=[
                migrations.RemoveField(model_name="quotaledgerentry", name="refund_of"),
                migrations.RemoveField(model_name="quotaledgerentry", name="task"),
                migrations.RemoveField(model_name="quotaledgerentry", name="user"),
                migrations.DeleteModel(name="QuotaAccount"),
                migrations.DeleteModel(name="QuotaLedgerEntry"),
            ],
        ),
    ]
