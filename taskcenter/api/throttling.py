"""The API's rate limits, counted once for every web process on the machine.

DRF's throttles keep each client's request times in Django's default cache, which is per
process: behind gunicorn's N workers a client could make N times its rate. These count in a
small SQLite file under ``TASKCENTER_VAR_DIR`` that all of the machine's processes share, apart
from the service's database so a burst of API calls never waits on its write lock.

They keep two counters per client rather than a list of times (a sliding-window counter): the
requests of the current window and of the one before, the latter weighted by how much of it
still overlaps the last ``period`` seconds. One small row per client, one short write per
request, and within a few percent of an exact sliding log.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import threading
import time
from pathlib import Path

from django.conf import settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

logger = logging.getLogger("taskcenter.api")

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rate_window ("
    " key TEXT PRIMARY KEY, window INTEGER NOT NULL, current INTEGER NOT NULL,"
    " previous INTEGER NOT NULL, expires REAL NOT NULL)"
)
# Rows of clients gone quiet are swept on every this-many-th write of a process.
SWEEP_EVERY = 1000


class RateStore:
    """Per-client request counters in one SQLite file, safe across threads and processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():  # new thread, or a forked process
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            # Counters, not records: losing the last writes to a power cut is harmless.
            connection.execute("PRAGMA synchronous=OFF")
            connection.execute(SCHEMA)
            local.connection, local.pid, local.writes = connection, os.getpid(), 0
        return local.connection

    def hit(self, key: str, limit: int, period: float, now: float | None = None) -> float:
        """Count one request of ``key`` if it is within ``limit`` per ``period`` seconds.

        Returns 0.0 when it was allowed (and counted), else the seconds until one would be.
        """
        now = time.time() if now is None else now
        window, into = divmod(now, period)
        window = int(window)
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            row = connection.execute(
                "SELECT window, current, previous FROM rate_window WHERE key = ?", (key,)
            ).fetchone()
            current, previous = _counts_in(row, window)
            weight = 1.0 - into / period
            if previous * weight + current >= limit:
                connection.execute("COMMIT")
                return _wait(current, previous, limit, period, into)
            connection.execute(
                "INSERT INTO rate_window (key, window, current, previous, expires)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
                " window = excluded.window, current = excluded.current,"
                " previous = excluded.previous, expires = excluded.expires",
                (key, window, current + 1, previous, (window + 2) * period),
            )
            self._sweep_now_and_then(connection, now)
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return 0.0

    def _sweep_now_and_then(self, connection: sqlite3.Connection, now: float) -> None:
        self._local.writes += 1
        if self._local.writes % SWEEP_EVERY == 0:
            connection.execute("DELETE FROM rate_window WHERE expires < ?", (now,))

    def clear(self) -> None:
        self._connection().execute("DELETE FROM rate_window")


def _counts_in(row: tuple | None, window: int) -> tuple[int, int]:
    """(this window's count, the previous window's count) from a stored row."""
    if row is None:
        return 0, 0
    stored_window, current, previous = row
    if stored_window == window:
        return current, previous
    if stored_window == window - 1:
        return 0, current
    return 0, 0


def _wait(current: int, previous: int, limit: int, period: float, into: float) -> float:
    """Seconds until ``previous * (1 - t / period) + current`` drops below ``limit``."""
    if current < limit and previous:
        # Within this window, once enough of the previous one has slid out of view.
        return max(period * (1 - (limit - current) / previous) - into, 0.0) + 0.001
    # Not in this window: in the next one, this window's count becomes the weighted one.
    return (period - into) + period * max(1 - limit / max(current, 1), 0.0) + 0.001


store = RateStore(Path(settings.VAR_DIR) / "throttle.sqlite3")


class _SharedRateThrottle:
    """``SimpleRateThrottle``'s rate and key, counted in ``store``."""

    _wait_seconds = 0.0

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        try:
            self._wait_seconds = store.hit(key, self.num_requests, self.duration)
        except sqlite3.Error:
            # Fail open: a broken counter file must not take the API down with it.
            logger.exception("Rate limit store unavailable; request let through")
            return True
        return self._wait_seconds == 0.0

    def wait(self) -> float | None:
        return math.ceil(self._wait_seconds) if self._wait_seconds else None


class SharedAnonRateThrottle(_SharedRateThrottle, AnonRateThrottle):
    """``THROTTLE_ANON_RATE`` per client address, across the machine's processes."""


class SharedUserRateThrottle(_SharedRateThrottle, UserRateThrottle):
    """``THROTTLE_USER_RATE`` per user, across the machine's processes."""
