"""Django's database cache, with a ``set`` that is one statement.

Without Redis the API's rate limits live in the database cache, and every API request writes
its client's history there (DRF's throttles read a key, then ``set`` it). Django's ``set`` is a
``SELECT COUNT(*)`` of the table (to decide whether to cull), then a transaction of a
``SELECT``, an ``UPDATE`` or ``INSERT`` and the ``COMMIT``: five round trips. On PostgreSQL
those cost about 4 ms of a 23 ms task list (measured with Django's test client, one call every
5 ms): a fifth of the request, and more when the server's processes wait for a core.

Here ``set`` is one upsert (``INSERT ... ON CONFLICT DO UPDATE``, which PostgreSQL and SQLite
both know), committed on its own, and the table is counted for culling on one ``set`` in
``CULL_CHECK_EVERY`` of a process (the table may then pass ``MAX_ENTRIES`` by that many rows per
process before the cull). The count of sets is the process's, not the cache object's: Django
makes a cache object per thread, and under ASGI per request. ``get``, ``add``, ``touch``,
``delete`` and culling itself are Django's, and on other databases so is ``set``.
"""

from __future__ import annotations

import base64
import itertools
import pickle
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.db import DatabaseCache as DjangoDatabaseCache
from django.db import DatabaseError, connections, router, transaction
from django.utils.timezone import now as tz_now

# The databases whose SQL has ``INSERT ... ON CONFLICT (column) DO UPDATE``.
UPSERT_VENDORS = frozenset({"postgresql", "sqlite"})
CULL_CHECK_EVERY = 100
# This process's sets so far (``next`` on it is atomic under the GIL).
_SETS = itertools.count()


class DatabaseCache(DjangoDatabaseCache):
    def __init__(self, table: str, params: dict[str, Any]) -> None:
        super().__init__(table, params)
        self._table_name = table

    def set(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        db = router.db_for_write(self.cache_model_class)
        connection = connections[db]
        if connection.vendor not in UPSERT_VENDORS:
            super().set(key, value, timeout, version)
            return
        key = self.make_and_validate_key(key, version=version)
        seconds = self.get_backend_timeout(timeout)
        # As Django's own set writes it: whole seconds, aware when USE_TZ.
        if seconds is None:
            expires = datetime.max
        else:
            expires = datetime.fromtimestamp(seconds, tz=UTC if settings.USE_TZ else None)
        expires = expires.replace(microsecond=0)
        encoded = base64.b64encode(pickle.dumps(value, self.pickle_protocol)).decode("latin1")
        try:
            with self._transaction(connection):
                self._upsert(db, connection, key, encoded, expires)
        except DatabaseError:
            pass  # as Django's set: a cache write may fail (a race, the database away) silently

    @staticmethod
    def _transaction(connection: Any) -> AbstractContextManager[Any]:
        """On PostgreSQL outside a transaction the statement commits itself: a BEGIN and a COMMIT
        would be two more round trips. On SQLite the transaction costs none and takes the write
        lock by the engine's spin (``taskcenter.lib.sqlite_engine``), not SQLite's sleeps; within
        a caller's transaction, a savepoint keeps a failed write from spoiling it."""
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            return nullcontext()
        return transaction.atomic(using=connection.alias)

    def _upsert(self, db: str, connection: Any, key: str, encoded: str, expires: datetime) -> None:
        count, upsert = self._statements(connection)
        with connection.cursor() as cursor:
            if next(_SETS) % CULL_CHECK_EVERY == 0:  # the process's first set counts
                cursor.execute(count)
                rows = cursor.fetchone()[0]
                if rows > self._max_entries:
                    now = tz_now().replace(microsecond=0)
                    self._cull(db, cursor, now, rows)  # type: ignore[attr-defined]
            cursor.execute(
                upsert, [key, encoded, connection.ops.adapt_datetimefield_value(expires)]
            )

    def _statements(self, connection: Any) -> tuple[str, str]:
        name = connection.ops.quote_name
        table, key, value, expires = (
            name(self._table_name),
            name("cache_key"),
            name("value"),
            name("expires"),
        )
        # Names, not data: the table's is the settings' LOCATION.
        count = f"SELECT COUNT(*) FROM {table}"  # noqa: S608
        upsert = (
            f"INSERT INTO {table} ({key}, {value}, {expires}) VALUES (%s, %s, %s) "  # noqa: S608
            f"ON CONFLICT ({key}) DO UPDATE SET {value} = excluded.{value}, "
            f"{expires} = excluded.{expires}"
        )
        return count, upsert
