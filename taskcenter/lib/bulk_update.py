"""One UPDATE for many rows that each get their own values: ``RowInserter``'s counterpart.

``QuerySet.update`` sets every row to the same values; giving each row its own takes a
``Case(When(pk=..., then=...))`` per row, whose construction, resolution and compilation cost
the ORM more than the database spends on the statement. ``RowUpdater`` sends the rows as a
``VALUES`` list joined to the table instead:

    UPDATE task SET status = %s, result = v.column3 FROM (VALUES (...), (...)) AS v
    WHERE task.id = v.column1 AND task.total_attempts = v.column2 AND task.status = %s

built once per row count, on PostgreSQL: one statement and one round trip for the rows, the
first row's values cast to their columns' types, which the other rows follow. SQLite (3.33 and
later) takes that statement too, but runs the row triggers of an ``UPDATE ... FROM`` at many
times their cost in an UPDATE by key (the execution's tally trigger: 0.48 against 0.05 ms for
one row; 16 rows 1.1 ms against 0.5, measured with the sqlite3 module alone), and a statement
there is a call into the library, not a round trip: so on SQLite each row is its own
``UPDATE ... WHERE`` by the match columns, all of them in one ``executemany``.

Values are prepared as the ORM prepares them (``get_db_prep_save``), so JSON and datetimes are
stored exactly as ``update`` would store them. The row count says how many rows matched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from django.db import connections, models


class RowUpdater:
    """``UPDATE <model>`` joined to rows of (``match`` columns..., ``values`` columns...)."""

    def __init__(
        self,
        model: type[models.Model],
        *,
        match: Sequence[str],
        values: Sequence[str],
        constants: Sequence[str],
        conditions: Sequence[str] = (),
    ) -> None:
        meta = model._meta

        def field(name: str) -> models.Field:
            return cast(models.Field, meta.get_field(name))

        self.model = model
        self.match = [field(name) for name in match]
        self.values = [field(name) for name in values]
        # Set to the same value in every row (``set``), and required of every row (``where``).
        self.constants = [field(name) for name in constants]
        self.conditions = [field(name) for name in conditions]
        self._statements: dict[tuple[str, int], str] = {}

    def update(
        self,
        rows: Sequence[Sequence[Any]],
        *,
        set: Mapping[str, Any],
        where: Mapping[str, Any] | None = None,
        using: str = "default",
    ) -> int:
        """Apply ``rows`` (match values, then new values, in column order); the rows matched."""
        if not rows:
            return 0
        connection = connections[using]
        columns = [*self.match, *self.values]
        constants = [f.get_db_prep_save(set[f.name], connection) for f in self.constants]
        where = where or {}
        conditions = [f.get_db_prep_save(where[f.name], connection) for f in self.conditions]
        prepared = [
            [
                value if value is None else column.get_db_prep_save(value, connection)
                for value, column in zip(row, columns, strict=True)
            ]
            for row in rows
        ]
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                # Each row's statement: its values, the constants, its match, the conditions.
                split = len(self.match)
                cursor.executemany(
                    self._by_key(connection),
                    [[*row[split:], *constants, *row[:split], *conditions] for row in prepared],
                )
            else:
                # In the statement's order: SET's constants, the VALUES rows, WHERE's conditions.
                params = [*constants, *(value for row in prepared for value in row), *conditions]
                cursor.execute(self._statement(connection, len(rows)), params)
            return cursor.rowcount

    def _by_key(self, connection: Any) -> str:
        """SQLite: one row's ``UPDATE ... WHERE``, run by ``executemany`` for every row."""
        key = (connection.alias, 0)
        if key not in self._statements:
            qn = connection.ops.quote_name
            assignments = [f"{qn(f.column)} = %s" for f in (*self.values, *self.constants)]
            conditions = [f"{qn(f.column)} = %s" for f in (*self.match, *self.conditions)]
            self._statements[key] = (
                f"UPDATE {qn(self.model._meta.db_table)} "  # noqa: S608 - names, not data
                f"SET {', '.join(assignments)} WHERE {' AND '.join(conditions)}"
            )
        return self._statements[key]

    def _statement(self, connection: Any, rows: int) -> str:
        key = (connection.alias, rows)
        if key in self._statements:
            return self._statements[key]
        qn = connection.ops.quote_name
        table = qn(self.model._meta.db_table)
        columns = [*self.match, *self.values]
        # Both databases name the columns of a VALUES list column1, column2, ... (a leading WITH
        # would name them, but Python's sqlite3 reports no row count for a statement that does
        # not start with UPDATE).
        names = [f"column{index + 1}" for index in range(len(columns))]
        if connection.vendor == "postgresql":
            first = ", ".join(f"CAST(%s AS {f.db_type(connection)})" for f in columns)
        else:
            first = ", ".join(["%s"] * len(columns))
        plain = ", ".join(["%s"] * len(columns))
        listed = ", ".join([f"({first})", *[f"({plain})"] * (rows - 1)])
        assignments = [
            f"{qn(f.column)} = v.{name}"
            for f, name in zip(self.values, names[len(self.match) :], strict=True)
        ] + [f"{qn(f.column)} = %s" for f in self.constants]
        conditions = [
            f"{table}.{qn(f.column)} = v.{name}" for f, name in zip(self.match, names, strict=False)
        ] + [f"{table}.{qn(f.column)} = %s" for f in self.conditions]
        sql = (
            f"UPDATE {table} SET {', '.join(assignments)} "  # noqa: S608 - names, not data
            f"FROM (VALUES {listed}) AS v WHERE {' AND '.join(conditions)}"
        )
        self._statements[key] = sql
        return sql
