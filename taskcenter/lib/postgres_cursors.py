"""A psycopg cursor for statements written with PostgreSQL's own ``$1, $2...`` placeholders.

Django's PostgreSQL cursors bind on the client (``ClientCursor``): every value is quoted into the
statement's text, which the server then parses and plans anew at each call, and psycopg scans the
text for its ``%s`` placeholders at each call too once a statement has more than 50 values. For a
hot statement built once, ``RawCursor`` sends the values apart under the statement's own
placeholders, and psycopg can keep it prepared on the connection (its ``prepare_threshold``).
"""

from __future__ import annotations

import functools
from typing import Any

import psycopg
from psycopg._queries import PostgresQuery


class LoggedRawCursor(psycopg.RawCursor):
    """``RawCursor`` that leaves every statement it ran where Django's query log reads it.

    Django logs ``cursor._query.query`` (``last_executed_query``), which psycopg sets only for a
    statement it does not run prepared: the log (``connection.queries``, the test suite's
    ``CaptureQueriesContext``) would show ``None`` for every later call.
    """

    def _convert_query(self, query: Any, params: Any = None) -> PostgresQuery:
        self._query = converted = super()._convert_query(query, params)
        return converted


def raw_cursor(connection: Any) -> Any:
    """A ``LoggedRawCursor`` of Django's ``connection``, wrapped as Django wraps its own (query
    log, execute wrappers, translated errors)."""
    connection.ensure_connection()
    with connection.wrap_database_errors:
        cursor = LoggedRawCursor(connection.connection)
    return connection._prepare_cursor(cursor)


@functools.lru_cache(maxsize=64)
def numbered(sql: str) -> str:
    """``sql`` written with Django's ``%s`` placeholders, with ``$1``, ``$2``... instead (and
    ``%%`` as ``%``): the text a ``LoggedRawCursor`` runs. Remembered for the last 64."""
    count = 0
    pieces = []
    for piece in sql.split("%%"):
        parts = piece.split("%s")
        if any("%" in part for part in parts):
            raise ValueError(f"Only %s and %% may follow a % in {sql!r}")
        text = parts[0]
        for part in parts[1:]:
            count += 1
            text += f"${count}{part}"
        pieces.append(text)
    return "%".join(pieces)
