"""Counting a request's queries without the rate limiter's bookkeeping."""

from __future__ import annotations

from django.test.utils import CaptureQueriesContext


def view_queries(queries: CaptureQueriesContext) -> list[str]:
    """The queries of the view itself. Rate limiting reads and writes the shared cache (the
    database cache here, in savepoints on SQLite) at every request, and counts that table once
    in a hundred writes of the process (``taskcenter.lib.database_cache``): which request pays
    for that count depends on every test before it."""
    return [
        query["sql"]
        for query in queries.captured_queries
        if "taskcenter_cache" not in query["sql"] and "SAVEPOINT" not in query["sql"]
    ]
