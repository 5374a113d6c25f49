"""Migrations that take a field's own index away without rebuilding its table.

Django applies ``AlterField(db_index=False)`` on SQLite by remaking the table: a new table, every
row copied, the old one dropped and the new one renamed. For the task table that is a copy of
every task, and the rename fails outright while triggers (the tallies') name the table.
``without_own_index`` changes the field in the migration state as ``AlterField`` would and, in
the database, drops the one index that served the column alone, found by introspection (its
name comes from the table's name when it was made, which a moved model no longer has).
Reversed, it makes the index again under Django's name for it.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations, models


def without_own_index(
    app_label: str, model_name: str, field_name: str, field: models.Field
) -> migrations.SeparateDatabaseAndState:
    """``AlterField`` to ``field`` (the same field with ``db_index=False``), in place."""

    def drop(apps: Any, schema_editor: Any) -> None:
        model = apps.get_model(app_label, model_name)
        column = model._meta.get_field(field_name).column
        table = model._meta.db_table
        connection = schema_editor.connection
        with connection.cursor() as cursor:
            constraints = connection.introspection.get_constraints(cursor, table)
        own = [
            name
            for name, info in constraints.items()
            if info["index"]
            and info["columns"] == [column]
            and not info["unique"]
            and not info["primary_key"]
        ]
        for name in own:
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
