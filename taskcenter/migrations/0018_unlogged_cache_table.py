"""On PostgreSQL the database cache's table is UNLOGGED: its rows (the API's rate-limit
histories, written at every request when there is no Redis) go to no write-ahead log, so a write
does not wait for a flush to disk, the cost of a commit here. After a crash of the database
server PostgreSQL empties such a table, which for a cache is what a restart of Redis does: the
clients' counts start over. Standbys do not get its rows; the web processes write and read the
primary.

A cache table that ``createcachetable`` makes later (after a move from Redis back to the
database) is a plain one; ``ALTER TABLE <name> SET UNLOGGED`` makes it this kind.
"""

from django.conf import settings
from django.core.cache.backends.db import DatabaseCache
from django.db import migrations
from django.utils.module_loading import import_string


def _cache_tables() -> list[str]:
    return [
        cache["LOCATION"]
        for cache in settings.CACHES.values()
        if issubclass(import_string(cache["BACKEND"]), DatabaseCache)
    ]


def _set(schema_editor, persistence: str) -> None:
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    existing = set(connection.introspection.table_names())
    for table in _cache_tables():
        if table in existing:
            schema_editor.execute(
                f"ALTER TABLE {schema_editor.quote_name(table)} SET {persistence}"
            )


def unlogged(apps, schema_editor) -> None:
    _set(schema_editor, "UNLOGGED")


def logged(apps, schema_editor) -> None:
    _set(schema_editor, "LOGGED")


class Migration(migrations.Migration):
    dependencies = [("taskcenter", "0017_list_indexes_tie_break")]

    operations = [migrations.RunPython(unlogged, logged)]
