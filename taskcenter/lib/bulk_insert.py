"""Multi-row INSERTs of one model, built once and filled with plain tuples.

``bulk_create`` builds a model instance per row and prepares every field of every row through
the ORM; for ten thousand tasks of forty columns that alone takes seconds. ``RowInserter``
takes rows as tuples in a fixed column order, prepares only values that are not already in the
database's form (a ``str`` for a text column, an ``int`` for an integer one pass unchanged; the
rest go through the field's own ``get_db_prep_save``, so JSON and datetimes are stored exactly as
the ORM stores them), and sends them in as few statements as the database's parameter limit
allows. Model defaults, ``auto_now_add`` and ``pre_save`` signals are the caller's business:
every column it names gets the value it gives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from django.db import connections, models

# Values of these Python types go to columns of these field types unchanged (the ORM's
# preparation would return them as they are).
_PLAIN: dict[str, tuple[type, ...]] = {
    "CharField": (str,),
    "TextField": (str,),
    "BooleanField": (bool,),
    "IntegerField": (int,),
    "BigIntegerField": (int,),
    "SmallIntegerField": (int,),
    "PositiveIntegerField": (int,),
    "PositiveSmallIntegerField": (int,),
    "PositiveBigIntegerField": (int,),
    "AutoField": (int,),
    "BigAutoField": (int,),
    "ForeignKey": (int,),
    "OneToOneField": (int,),
}
# PostgreSQL takes at most 65535 parameters a statement; rows are also capped so that one
# statement stays a few hundred kilobytes.
_POSTGRESQL_PARAMS = 65_535
# psycopg parses a statement for its placeholders each time unless it has at most this many
# (``psycopg._queries.MAX_CACHED_STATEMENT_PARAMS``); an INSERT of more rows than that goes as a
# COPY on PostgreSQL instead (see ``RowInserter._copy``).
_PSYCOPG_CACHED_PARAMS = 50
# Types whose objects rows share, prepared once per object and call.
_SHARED = (datetime, dict, list)
_MAX_ROWS = 1_000


class RowInserter:
    """``INSERT INTO <model> (<columns>) VALUES (...), (...)`` for rows given as tuples.

    ``columns`` are field names (a foreign key by its field name, valued by the related id).
    With ``returning`` the new primary keys come back in row order.
    """

    def __init__(self, model: type[models.Model], columns: Sequence[str], *, returning: bool):
        meta = model._meta
        self.model = model
        # Concrete columns (get_field also knows reverse relations, which have none).
        self.fields = [cast(models.Field, meta.get_field(name)) for name in columns]
        self.returning = returning
        self._statements: dict[tuple[str, int], str] = {}
        # Per database alias: each column's preparation, and how many rows fit one statement.
        self._prepare: dict[str, list[_Column]] = {}
        self._per_statement: dict[str, int] = {}
        self._sourced: dict[tuple, tuple[str, list[_Column]]] = {}

    def insert(self, rows: Sequence[Sequence[Any]], *, using: str = "default") -> list[int]:
        """Insert ``rows`` (Python values, in ``columns`` order); the new primary keys if
        ``returning``, else ``[]``. Runs in the caller's transaction."""
        if not rows:
            return []
        connection = connections[using]
        prepare = self._columns(connection)
        per_statement = self._per_statement[using]
        if (
            connection.vendor == "postgresql"
            and len(rows) > 1
            and len(rows) * len(self.fields) > _PSYCOPG_CACHED_PARAMS
        ):
            return self._copy(connection, rows, prepare)
        keys: list[int] = []
        # Rows of a batch share objects (one "now", one empty ``{}``): each is prepared once per
        # call. The rows hold them all, so no id is reused meanwhile, and nothing changes them
        # while the call runs.
        memo: dict[Any, Any] = {}
        with connection.cursor() as cursor:
            for start in range(0, len(rows), per_statement):
                chunk = rows[start : start + per_statement] if len(rows) > per_statement else rows
                params = [value for row in chunk for value in _prepared(row, prepare, memo)]
                cursor.execute(self._statement(connection, len(chunk)), params)
                if self.returning:
                    # Ids are handed out in row order within one statement on both databases
                    # (SQLite's AUTOINCREMENT under the write lock, PostgreSQL's sequence), so
                    # the ascending ids are the rows' ids in order, whatever order RETURNING
                    # lists them in.
                    keys.extend(sorted(row[0] for row in cursor.fetchall()))
        return keys

    def from_source(
        self, row: Sequence[Any], *, source: str, computed: Mapping[str, str], using: str
    ) -> tuple[str, list[Any]]:
        """``INSERT INTO <model> (<columns>) SELECT ... FROM <source>`` and its parameters.

        For a clause of a larger statement (a common table expression reading another one's
        rows): the columns in ``computed`` take its SQL expression (over ``source``), every other
        one a placeholder for its value in ``row``, which lists only those, in column order and
        prepared as ``insert`` prepares them. No ``source``: one row of values only. Built once
        per source.
        """
        connection: Any = connections[using]
        prepare = self._columns(connection)
        key = (using, source, tuple(computed.items()))
        if key not in self._sourced:
            qn = connection.ops.quote_name
            columns = ", ".join(qn(field.column) for field in self.fields)
            values = ", ".join(computed.get(field.name, "%s") for field in self.fields)
            self._sourced[key] = (
                f"INSERT INTO {qn(self.model._meta.db_table)} ({columns}) "  # noqa: S608
                f"SELECT {values}" + (f" FROM {source}" if source else ""),
                [
                    column
                    for column, field in zip(prepare, self.fields, strict=True)
                    if field.name not in computed
                ],
            )
        sql, placed = self._sourced[key]
        return sql, _prepared(row, placed, {})

    def _columns(self, connection: Any) -> list[_Column]:
        using = connection.alias
        if using not in self._prepare:
            self._prepare[using] = [_column(field, connection) for field in self.fields]
            self._per_statement[using] = self._rows_per_statement(connection)
        return self._prepare[using]

    def _copy(
        self, connection: Any, rows: Sequence[Sequence[Any]], prepare: list[_Column]
    ) -> list[int]:
        """PostgreSQL: ``COPY ... FROM STDIN``, the primary keys drawn from the sequence first.

        psycopg parses every statement for its placeholders, and caches only short ones: a
        hundred-row INSERT is parsed again each time, at three times the cost of the COPY. COPY
        has no placeholders and its rows are formatted in C. It runs the table's triggers as an
        INSERT does (statement triggers with their transition tables included). JSON goes as
        the text the ORM's adapter would send, so shared objects are encoded once.
        """
        qn = connection.ops.quote_name
        meta = self.model._meta
        memo: dict[Any, Any] = {}
        keys: list[int] = []
        fields = self.fields
        prepare = [_Column(column.plain, _as_text(column.prepare)) for column in prepare]
        with connection.cursor() as cursor, connection.wrap_database_errors:
            if self.returning:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                    [meta.db_table, meta.pk.column, len(rows)],
                )
                keys = sorted(row[0] for row in cursor.fetchall())
                fields = [meta.pk, *fields]
            columns = ", ".join(qn(field.column) for field in fields)
            with cursor.cursor.copy(f"COPY {qn(meta.db_table)} ({columns}) FROM STDIN") as copy:
                for index, row in enumerate(rows):
                    values = _prepared(row, prepare, memo)
                    copy.write_row([keys[index], *values] if keys else values)
        return keys

    def _rows_per_statement(self, connection: Any) -> int:
        if connection.vendor == "sqlite":
            import sqlite3

            connection.ensure_connection()
            limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        elif connection.vendor == "postgresql":
            limit = _POSTGRESQL_PARAMS
        else:
            limit = connection.features.max_query_params or _POSTGRESQL_PARAMS
        return max(1, min(_MAX_ROWS, limit // len(self.fields)))

    def _statement(self, connection: Any, rows: int) -> str:
        key = (connection.alias, rows)
        if key not in self._statements:
            qn = connection.ops.quote_name
            columns = ", ".join(qn(field.column) for field in self.fields)
            row = "(" + ", ".join(["%s"] * len(self.fields)) + ")"
            sql = (
                f"INSERT INTO {qn(self.model._meta.db_table)} ({columns}) "  # noqa: S608
                f"VALUES {', '.join([row] * rows)}"
            )
            if self.returning:
                returning, _ = connection.ops.return_insert_columns([self.model._meta.pk])
                sql = f"{sql} {returning}"
            self._statements[key] = sql
        return self._statements[key]


# A column's preparation of a value that is not plain; the dict is the call's memo.
Prepare = Callable[[Any, dict[Any, Any]], Any]


class _Column(NamedTuple):
    plain: frozenset[type]  # values of these types (None's among them) go in unchanged
    prepare: Prepare  # the rest go through this


def _prepared(row: Sequence[Any], columns: list[_Column], memo: dict[Any, Any]) -> list[Any]:
    # One set lookup per value, the column unpacked as the tuple it is: this runs for every
    # value of every row (four thousand in a hundred-task batch).
    return [
        value if type(value) in plain else prepare(value, memo)
        for value, (plain, prepare) in zip(row, columns, strict=True)
    ]


def _column(field: Any, connection: Any) -> _Column:
    # Only the connection's operations and features are used, never its socket, so this may be
    # another thread's wrapper of the same database.
    prepare_save = field.get_db_prep_save

    def prepare(value: Any, memo: dict[Any, Any]) -> Any:
        if type(value) in _SHARED:
            key = id(value)
            if key not in memo:
                memo[key] = prepare_save(value, connection)
            return memo[key]
        return prepare_save(value, connection)

    return _Column(frozenset((type(None), *_PLAIN.get(field.get_internal_type(), ()))), prepare)


def _as_text(prepare: Prepare) -> Prepare:
    """For COPY: a psycopg JSON wrapper (what the ORM's PostgreSQL adapter makes of a JSON
    value) becomes the text it would send, encoded by the same function."""

    def prepare_text(value: Any, memo: dict[Any, Any]) -> Any:
        prepared = prepare(value, memo)
        if not (hasattr(prepared, "obj") and callable(getattr(prepared, "dumps", None))):
            return prepared
        if type(value) not in _SHARED:
            return prepared.dumps(prepared.obj)
        key = ("text", id(value))
        if key not in memo:
            memo[key] = prepared.dumps(prepared.obj)
        return memo[key]

    return prepare_text
