"""Migrations that take a field's own index away without rebuilding its table.

Django applies ``AlterField(db_index=False)`` on SQLite by remaking the table: a new table, every
row copied, the old one dropped and the new one renamed. For the task table that is a copy of
every task, and the rename fails outright while triggers (the tallies') name the table.
``without_own_index`` changes the field in the migration state as ``AlterField`` would and, in
the database, drops the one index that served the column alone, found by introspection (its
name comes from the table's name when it was made, which a moved model no longer has).
Reversed, it makes the index again under Django's name for it.

``own_index_to_meta`` keeps a text field's index but moves it to ``Meta.indexes``: on PostgreSQL
``db_index=True`` on a ``CharField`` makes a second index for ``LIKE 'prefix%'`` searches
(``varchar_pattern_ops``), maintained by every write of the row, which only a ``startswith``
lookup would read.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations, models


def _own_indexes(schema_editor: Any, table: str, column: str) -> list[str]:
    """The non-unique indexes of ``table`` on ``column`` alone, by introspection."""
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return [
        name
        for name, info in constraints.items()
        if info["index"]
        and info["columns"] == [column]
        and not info["unique"]
        and not info["primary_key"]
    ]


def without_own_index(
    app_label: str, model_name: str, field_name: str, field: models.Field
) -> migrations.SeparateDatabaseAndState:
    """``AlterField`` to ``field`` (the same field with ``db_index=False``), in place."""

    def drop(apps: Any, schema_editor: Any) -> None:
        model = apps.get_model(app_label, model_name)
        column = model._meta.get_field(field_name).column
        for name in _own_indexes(schema_editor, model._meta.db_table, column):
            schema_editor.execute(schema_editor._delete_index_sql(model, name))

    def make_again(apps: Any, schema_editor: Any) -> None:
        model = apps.get_model(app_label, model_name)
        schema_editor.execute(
            schema_editor._create_index_sql(model, fields=[model._meta.get_field(field_name)])
        )

    return migrations.SeparateDatabaseAndState(
        state_operations=[migrations.AlterField(model_name, field_name, field)],
        database_operations=[migrations.RunPython(drop, make_again)],
    )


def _pattern_indexes(schema_editor: Any, table: str, column: str) -> list[str]:
    """PostgreSQL indexes of ``table`` on ``column`` alone with a ``*_pattern_ops`` class."""
    if schema_editor.connection.vendor != "postgresql":
        return []
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT index_class.relname
            FROM pg_index JOIN pg_class index_class ON index_class.oid = pg_index.indexrelid
            JOIN pg_opclass ON pg_opclass.oid = pg_index.indclass[0]
            JOIN pg_attribute ON pg_attribute.attrelid = pg_index.indrelid
                AND pg_attribute.attnum = pg_index.indkey[0]
            WHERE pg_index.indrelid = %s::regclass AND pg_index.indnatts = 1
                AND pg_attribute.attname = %s AND pg_opclass.opcname LIKE '%%pattern_ops'
            """,
            [table, column],
        )
        return [name for (name,) in cursor.fetchall()]


def own_index_to_meta(
    app_label: str, model_name: str, field_name: str, field: models.Field, index: models.Index
) -> migrations.SeparateDatabaseAndState:
    """``field`` (the same field with ``db_index=False``) and ``index`` on it in its place.

    In the database the field's index is renamed to ``index.name`` (remade on SQLite, which
    cannot rename one) and its pattern-ops twin, on PostgreSQL, dropped.
    """

    def move(apps: Any, schema_editor: Any) -> None:
        model = apps.get_model(app_label, model_name)
        column = model._meta.get_field(field_name).column
        table = model._meta.db_table
        patterns = _pattern_indexes(schema_editor, table, column)
        for name in patterns:
            schema_editor.execute(schema_editor._delete_index_sql(model, name))
        own = [name for name in _own_indexes(schema_editor, table, column) if name not in patterns]
        if index.name in own:
            return
        if own:
            old = models.Index(fields=[field_name], name=own[0])
            schema_editor.rename_index(model, old, index)
        else:
            schema_editor.add_index(model, index)

    def move_back(apps: Any, schema_editor: Any) -> None:
        model = apps.get_model(app_label, model_name)
        field = model._meta.get_field(field_name)
        auto_name = schema_editor._create_index_name(model._meta.db_table, [field.column])
        schema_editor.rename_index(model, index, models.Index(fields=[field_name], name=auto_name))
        if schema_editor.connection.vendor == "postgresql":
            twin = schema_editor._create_like_index_sql(model, field)  # None unless text
            if twin is not None:
                schema_editor.execute(twin)

    return migrations.SeparateDatabaseAndState(
        state_operations=[
            migrations.AlterField(model_name, field_name, field),
            migrations.AddIndex(model_name, index),
        ],
        database_operations=[migrations.RunPython(move, move_back)],
    )
