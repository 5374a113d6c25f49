"""Model instances from the rows a hand-written statement returns (``UPDATE ... RETURNING``).

An ``UPDATE`` that says which rows it moved and what they now hold replaces a locking read,
the update and a second read: one statement instead of three. The ORM has no such query, and
building its three costs more Python than the database spends on them (the worker's claim: 4 ms
of query compilation against 0.6 ms of statements, measured on SQLite, all of it inside the
transaction, so inside SQLite's one write lock). ``ReturnedRows`` gives the ``RETURNING``
clause of every concrete column and turns the rows into instances as a query would: each value
through the same converters the ORM applies (JSON parsed, SQLite's datetimes made aware), then
``Model.from_db``. SQLite (3.35 and later) and PostgreSQL both take the clause.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Generic, TypeVar

from django.db import models

M = TypeVar("M", bound=models.Model)

# A column's converters: (position in the row, the functions, the column expression they take).
_Converters = list[tuple[int, list[Any], Any]]


class ReturnedRows(Generic[M]):
    """The ``RETURNING`` clause of ``model``'s concrete columns, and its rows as instances."""

    def __init__(self, model: type[M]) -> None:
        self.model = model
        self.fields = list(model._meta.concrete_fields)
        self.attnames = [field.attname for field in self.fields]
        self._converters: dict[str, _Converters] = {}

    def returning(self, connection: Any) -> str:
        qn = connection.ops.quote_name
        return "RETURNING " + ", ".join(qn(field.column) for field in self.fields)

    def load(self, rows: Iterable[Sequence[Any]], connection: Any) -> list[M]:
        converters = self._converters.get(connection.vendor)
        if converters is None:
            converters = self._converters[connection.vendor] = self._find_converters(connection)
        alias = connection.alias
        loaded = []
        for row in rows:
            values = list(row)
            for index, functions, expression in converters:
                value = values[index]
                for convert in functions:
                    value = convert(value, expression, connection)
                values[index] = value
            loaded.append(self.model.from_db(alias, self.attnames, values))
        return loaded

    def _find_converters(self, connection: Any) -> _Converters:
        # What ``SQLCompiler.get_converters`` finds for these columns. The functions belong to
        # the operations of the connection that found them, and use nothing of it but its
        # settings, so they serve every connection to a database of the same kind (another
        # thread's wrapper included), as ``lib.bulk_insert``'s preparations do.
        table = self.model._meta.db_table
        found: _Converters = []
        for index, field in enumerate(self.fields):
            column = field.get_col(table)
            functions = connection.ops.get_db_converters(column) + column.get_db_converters(
                connection
            )
            if functions:
                found.append((index, functions, column))
        return found
