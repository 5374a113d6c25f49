from django.db import migrations, models


def _sqlite_tally_triggers(install: bool):
    """SQLite adds a NOT NULL column by rebuilding the task table, and refuses to rename the
    rebuilt table while the tally triggers name it: lift them around the rebuild (same rows, so
    the tallies stay right). PostgreSQL adds the column in place and keeps its triggers."""

    def run(apps, schema_editor):
        from taskcenter.models import tally_triggers as tallies

        vendor = schema_editor.connection.vendor
        if vendor != "sqlite":
            return
        statements = (
            tallies.install_statements(vendor, sharded=False)  # before the shard column (0013)
            if install
            else tallies.drop_statements(vendor)
        )
        for statement in statements:
            schema_editor.execute(statement, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("taskcenter", "0006_quota_account_ledger"),
    ]

    operations = [
        migrations.RunPython(_sqlite_tally_triggers(False), _sqlite_tally_triggers(True)),
        migrations.AddField(
            model_name="task",
            name="lost_attempts",
            field=models.PositiveIntegerField(default=0, verbose_name="lost attempts"),
        ),
        migrations.RunPython(_sqlite_tally_triggers(True), _sqlite_tally_triggers(False)),
    ]
