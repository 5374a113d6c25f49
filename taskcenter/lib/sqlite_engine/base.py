"""Django's SQLite backend, taking the write lock by a short spin instead of SQLite's sleeps.

SQLite has one writer at a time, and a connection that finds the write lock taken waits in its
busy handler, which sleeps 1, 2, 5, 10, 15, 20, 25... ms between tries, whatever the holder is
doing. Task Center's write transactions are short (a claim, a batch of completions, a
``create_task``: under a millisecond each), so a writer that arrives just after another one
started slept 1 ms for a lock free again after 0.3, and one that lost twice slept 3 ms more:
with a worker running, ``create_task`` took 4-7 ms at the median and 16 slots of 100 ms tasks
spent 43 % of their time waiting for ``BEGIN IMMEDIATE``.

Every write transaction here starts with ``BEGIN IMMEDIATE`` (the settings' transaction mode),
and once it holds the lock nothing else in the transaction can be refused it (in WAL mode a
commit does not wait for readers). So only that statement spins: it is tried with SQLite's busy
timeout off, and retried after sleeps that start at 50 µs and double up to 1 ms, until the
configured timeout has passed. Every other statement keeps SQLite's own busy handler and the
connection's timeout, for writes made outside a transaction.
"""

from __future__ import annotations

import sqlite3
import time

from django.db.backends.sqlite3 import base

FIRST_PAUSE = 0.00005
LONGEST_PAUSE = 0.001


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        # The sqlite3 module's `timeout` (seconds) is SQLite's busy timeout.
        self._busy_timeout_ms = int(float(conn_params.get("timeout", 5.0)) * 1000)
        return connection

    def _start_transaction_under_autocommit(self):
        if self.transaction_mode != "IMMEDIATE":  # type: ignore[attr-defined]
            super()._start_transaction_under_autocommit()  # type: ignore[misc]
            return
        raw = self.connection
        with self.wrap_database_errors:
            raw.execute("PRAGMA busy_timeout = 0")
            try:
                self._begin_immediate(raw)
            finally:
                raw.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms:d}")

    def _begin_immediate(self, raw: sqlite3.Connection) -> None:
        deadline = time.monotonic() + self._busy_timeout_ms / 1000
        pause = FIRST_PAUSE
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
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
