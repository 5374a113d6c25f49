"""The statistics tallies get a shard column, so that concurrent writers do not queue on one row.

The triggers are lifted around the change (SQLite rebuilds the tally tables to add a column and
refuses while triggers name them) and installed again writing shards; the rows already there
become shard 0, the folded total, so nothing is recounted. Going back folds every shard into
shard 0 first, which the old one-row-per-key constraint needs.
"""

from django.db import migrations, models


def _run(statements):
    def run(apps, schema_editor):
        for statement in statements(schema_editor.connection.vendor):
            schema_editor.execute(statement, params=None)

    return run


def _old_triggers(vendor):
    from taskcenter.models import tally_triggers as tallies

    return tallies.install_statements(vendor, sharded=False)


def _new_triggers(vendor):
    from taskcenter.models import tally_triggers as tallies

    return tallies.install_statements(vendor)


def _drop_triggers(vendor):
    from taskcenter.models import tally_triggers as tallies

    return tallies.drop_statements(vendor)


def _fold_into_shard_zero(vendor):
    keys = {
        "taskcenter_tasktally": "owner_id, status, task_type, platform",
        "taskcenter_durationtally": "owner_id, task_type, platform, bin",
    }
    statements = []
    for table, key in keys.items():
        statements += [
            f"INSERT INTO {table} AS tally ({key}, shard, n) "
            f"SELECT {key}, 0, SUM(n) FROM {table} WHERE shard <> 0 GROUP BY {key} "
            f"ON CONFLICT ({key}, shard) DO UPDATE SET n = tally.n + EXCLUDED.n",
            f"DELETE FROM {table} WHERE shard <> 0 OR n = 0",
        ]
    return statements


def _nothing(vendor):
    return []


class Migration(migrations.Migration):
    dependencies = [
        ("taskcenter", "0012_quota_moves_to_its_own_app"),
    ]

    operations = [
        migrations.RunPython(_run(_drop_triggers), _run(_old_triggers)),
        migrations.RemoveConstraint(model_name="durationtally", name="duration_tally_key"),
        migrations.RemoveConstraint(model_name="tasktally", name="task_tally_key"),
        migrations.AddField(
            model_name="durationtally",
            name="shard",
            field=models.SmallIntegerField(default=0, verbose_name="shard"),
        ),
        migrations.AddField(
            model_name="tasktally",
            name="shard",
            field=models.SmallIntegerField(default=0, verbose_name="shard"),
        ),
        migrations.AddConstraint(
            model_name="durationtally",
            constraint=models.UniqueConstraint(
                fields=("owner_id", "task_type", "platform", "bin", "shard"),
                name="duration_tally_shard_key",
            ),
        ),
        migrations.AddConstraint(
            model_name="tasktally",
            constraint=models.UniqueConstraint(
                fields=("owner_id", "status", "task_type", "platform", "shard"),
                name="task_tally_shard_key",
            ),
        ),
        migrations.RunPython(_run(_nothing), _run(_fold_into_shard_zero)),
        migrations.RunPython(_run(_new_triggers), _run(_drop_triggers)),
    ]
