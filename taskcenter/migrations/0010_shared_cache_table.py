"""The database cache's table, which the API's rate limits count in.

A migration rather than a separate ``createcachetable`` step, because every way the service is
set up (``make run``, the test databases, CI, a deployment) runs ``migrate``. With ``REDIS_URL``
set no database cache is configured and this does nothing; ``manage.py createcachetable`` makes
the table later if the cache moves back to the database.
"""

from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor) -> None:
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("taskcenter", "0009_account_hold_owner_unique")]

    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop)]
