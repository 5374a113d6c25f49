"""Django's SQLite backend, taking the write lock by a short spin instead of SQLite's sleeps.

SQLite has one writer at a time, and a connection that finds the write lock taken waits in its
busy handler, which sleeps 1, 2, 5, 10, 15, 20, 25... ms between tries, whatever the holder is
doing. Task Center's write transactions are short (a claim, a batch of completions, a
``create_task``: under a millisecond each), so a writer that arrives just after another one
started slept 1 ms for a lock free again after 0.3, and one that lost twice slept 3 ms more:
with a worker running, ``create_task`` took 4-7 ms at the median and 16 slots of 100 ms tasks
spent 43 % of their time waiting for ``BEGIN IMMEDIATE``.

Every write transaction here starts with ``BEGIN IMMEDIATE`` (the settings' transaction mode;
``BEGIN EXCLUSIVE`` where django-tasks-db asks for it, the same lock in WAL mode), and once it
holds the lock nothing else in the transaction can be refused it (in WAL mode a commit does not
wait for readers). So only that statement spins: it is tried with SQLite's busy timeout off, and
retried after sleeps that start at 50 µs and double up to 1 ms, until the configured timeout has
passed. Every other statement keeps SQLite's own busy handler and the connection's timeout, for
writes made outside a transaction.

**Kept connections** (``OPTIONS["pool_size"]``, set under ASGI): there every request runs on a
thread of its own (asgiref), so Django opens a connection per request and closes it at the end
(``CONN_MAX_AGE`` 0): opening one, with Django's forty SQL functions and the settings' PRAGMAs,
was a tenth of the web process's time on the task list. A connection closed outside a
transaction goes back to a per-process queue instead, and the next request's thread takes it
(SQLite connections may change threads between uses; Django lets one thread use it at a time).
Django's own pool is PostgreSQL's only.

**Placeholders converted once** (``CursorWrapper``): Django's cursor rewrites every statement's
``%s`` into SQLite's ``?`` with a regular expression, at every execution. A statement is made
again for each query, but the same texts come back (the ORM compiles the same queries, the bulk
inserts reuse theirs): a hundred-task batch's INSERTs are tens of kilobytes, and scanning them was
a twentieth of the request. The conversions of the statements met most recently are kept.
"""

from __future__ import annotations

import functools
import os
import queue
import sqlite3
import time
from typing import Any

from django.db.backends.sqlite3 import base

FIRST_PAUSE = 0.00005
LONGEST_PAUSE = 0.001
# Statements whose conversion is kept: more than the ORM's distinct queries on a busy path, and
# each kept once (a few megabytes at most: the longest, a thousand-row INSERT, is not kept).
CONVERSIONS_KEPT = 512
LONGEST_KEPT = 64 * 1024


# Idle connections by (process, database file, options): a forked child never takes its
# parent's (a SQLite connection must not cross a fork). Only the web server's processes keep
# any (the settings set ``pool_size`` under ASGI), and nothing replaces the database file
# under a running server; ``close_kept_connections`` empties the queues.
_KEPT: dict[tuple, queue.SimpleQueue[sqlite3.Connection]] = {}


class CursorWrapper(base.SQLiteCursorWrapper):
    """Django's cursor, converting each statement text's placeholders once."""

    def convert_query(self, query: str, *, param_names: Any = None) -> str:
        if param_names is None and len(query) <= LONGEST_KEPT:
            return _qmark(query)
        return super().convert_query(query, param_names=param_names)


@functools.lru_cache(maxsize=CONVERSIONS_KEPT)
def _qmark(query: str) -> str:
    # Django's conversion of "format" placeholders, as its own cursor makes it.
    return base.SQLiteCursorWrapper.convert_query(None, query)  # type: ignore[arg-type]


class DatabaseWrapper(base.DatabaseWrapper):
    pool_size = 0
    _kept_queue: queue.SimpleQueue[sqlite3.Connection] | None = None

    def create_cursor(self, name: str | None = None) -> CursorWrapper:
        return self.connection.cursor(factory=CursorWrapper)

    def get_connection_params(self):
        params = super().get_connection_params()
        self.pool_size = int(params.pop("pool_size", 0))
        return params

    def get_new_connection(self, conn_params):
        # The sqlite3 module's `timeout` (seconds) is SQLite's busy timeout.
        self._busy_timeout_ms = int(float(conn_params.get("timeout", 5.0)) * 1000)
        kept = self._kept_queue = self._kept(conn_params)
        if kept is not None:
            try:
                return kept.get_nowait()
            except queue.Empty:
                pass
        return super().get_new_connection(conn_params)

    def _close(self):
        raw, kept = self.connection, self._kept_queue
        if (
            raw is not None
            and kept is not None
            and not raw.in_transaction
            and kept.qsize() < self.pool_size
        ):
            kept.put(raw)
            return None
        return super()._close()  # type: ignore[misc]  # BaseDatabaseWrapper's, unstubbed

    def _kept(self, conn_params: dict) -> queue.SimpleQueue[sqlite3.Connection] | None:
        if not self.pool_size or self.is_in_memory_db():
            return None
        key = (os.getpid(), *sorted((name, str(value)) for name, value in conn_params.items()))
        kept = _KEPT.get(key)
        if kept is None:
            kept = _KEPT.setdefault(key, queue.SimpleQueue())
        return kept

    def _start_transaction_under_autocommit(self):
        # EXCLUSIVE too: django-tasks-db's ``exclusive_transaction`` (the worker's job claims)
        # asks for it, and in WAL mode it takes the same one write lock as IMMEDIATE.
        mode = self.transaction_mode  # type: ignore[attr-defined]
        if mode not in ("IMMEDIATE", "EXCLUSIVE"):
            super()._start_transaction_under_autocommit()  # type: ignore[misc]
            return
        raw = self.connection
        with self.wrap_database_errors:
            raw.execute("PRAGMA busy_timeout = 0")
            try:
                self._begin(raw, f"BEGIN {mode}")
            finally:
                raw.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms:d}")

    def _begin(self, raw: sqlite3.Connection, begin: str) -> None:
        deadline = time.monotonic() + self._busy_timeout_ms / 1000
        pause = FIRST_PAUSE
        while True:
            try:
                raw.execute(begin)
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF == sqlite3.SQLITE_BUSY
    return "locked" in str(exc) or "busy" in str(exc)


def close_kept_connections() -> int:
    """Close every idle kept connection of this process; returns how many."""
    closed = 0
    for kept in list(_KEPT.values()):
        while True:
            try:
                raw = kept.get_nowait()
            except queue.Empty:
                break
            raw.close()
            closed += 1
    return closed
