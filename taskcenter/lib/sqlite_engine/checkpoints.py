"""WAL checkpoints in a thread of the worker, instead of in the commits of whoever writes.

In WAL mode a commit appends its pages to the log, and by default the commit that takes the log
past 1,000 pages then copies the log back into the database file and syncs both (an automatic
checkpoint). The log starts over only once a checkpoint has copied all of it while no reader
still reads an older snapshot. With a worker claiming and completing while clients submit,
some reader always does: the log never started over (87 MB after 600 submissions), so every
commit found it past 1,000 pages and ran a checkpoint of its own, syncs included. That was
most of a ``create_task`` beside a busy worker (p50 5.3 ms, its COMMIT 2.4 of them; 1.6 ms with
the checkpoints taken elsewhere, same run).

So the commits of every connection leave checkpoints to this thread (``PRAGMA
wal_autocheckpoint`` is raised to ``SQLITE_WAL_AUTOCHECKPOINT`` pages in the settings: a safety
net for a process writing with no worker running, not the usual path). Every ``interval`` it
copies what readers allow (``PASSIVE``: nobody waits for it); once the log is past
``restart_pages`` it tries a ``RESTART`` for up to 20 ms, which succeeds when no writer holds the
lock and no reader an older snapshot at that moment, and then the next commit writes the log
from its start. A log that grew is cut to ``journal_size_limit`` when it starts over (settings),
so the file does not keep the size of its longest run. Every 0.5 s rather than 0.1: each pass
that copies syncs both files, and commits beside a sync were slower (back-to-back
``create_task`` beside a busy worker p50 1.93 and 1.79 ms against 2.19 and 2.06, alternated).

Every worker process on SQLite runs one; several share the work (SQLite lets one checkpoint run
at a time, and a second finds little left to copy).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections

from taskcenter.lib.sqlite_engine import base

logger = logging.getLogger(__name__)

INTERVAL = 0.5  # seconds between two passes
RESTART_PAGES = 4000  # a log this long (16 MB of 4 KiB pages) is started over
RESTART_TRIES_SECONDS = 0.02  # how long a pass keeps trying to start it over
RESTART_PAUSE = 0.0002
RESTART_LEFT_PAGES = 256  # at most this much of the log left for a RESTART to copy (1 MB)


class Checkpointer:
    """A daemon thread that checkpoints one SQLite database file until ``stop``."""

    def __init__(
        self,
        path: str,
        *,
        interval: float = INTERVAL,
        restart_pages: int = RESTART_PAGES,
    ) -> None:
        self.path = path
        self.interval = interval
        self.restart_pages = restart_pages
        self.passes = 0
        self.restarts = 0  # RESTARTs that started the log over
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="taskcenter-checkpoints", daemon=True
        )

    def start(self) -> Checkpointer:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        raw = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            # The settings' sync level: a checkpoint syncs the log and the database either way.
            raw.execute("PRAGMA synchronous = NORMAL")
            raw.execute("PRAGMA busy_timeout = 0")
            while not self._stopping.wait(self.interval):
                try:
                    self.checkpoint(raw)
                except sqlite3.Error:
                    # A locked or replaced file: the commits' own checkpoints cover meanwhile.
                    logger.warning("WAL checkpoint of %s failed", self.path, exc_info=True)
        finally:
            raw.close()

    def checkpoint(self, raw: sqlite3.Connection) -> tuple[int, int]:
        """One pass; returns the log's pages and how many of them are in the database now."""
        busy, log, copied = raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.passes += 1
        deadline = time.monotonic() + RESTART_TRIES_SECONDS
        while log >= self.restart_pages:
            # A RESTART holds the write lock (against new writers) while it copies and syncs,
            # so it is tried only when the PASSIVE pass just copied nearly all of the log (what
            # is left is a few commits' pages, copied in moments). With the busy timeout off, a
            # writer or an old reader in the way makes it one more PASSIVE pass. Tried again for
            # a few milliseconds, as the writers spin for their lock (``base``): one try a pass
            # lost to a steady stream of commits, and the commits went back to checkpointing.
            if log - copied <= RESTART_LEFT_PAGES:
                busy, log, copied = raw.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
                if not busy:
                    self.restarts += 1
                    break
            if time.monotonic() >= deadline:
                break
            time.sleep(RESTART_PAUSE)
            busy, log, copied = raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return log, copied


@contextmanager
def checkpointing(using: str = "default") -> Iterator[Checkpointer | None]:
    """Run a ``Checkpointer`` for the database ``using`` while the block runs, if it is a
    SQLite file on this engine (nothing on any other database, or in memory)."""
    connection = connections[using]
    if not isinstance(connection, base.DatabaseWrapper) or connection.is_in_memory_db():
        yield None
        return
    checkpointer = Checkpointer(str(connection.settings_dict["NAME"])).start()
    try:
        yield checkpointer
    finally:
        checkpointer.stop()
