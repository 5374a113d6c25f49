"""A per-process thread that renews the leases of every attempt this process is running.

Handlers that block on a slow platform for minutes never call ``ctx.progress``; their lease is
kept alive here. If the whole process freezes (SIGSTOP, a stuck GIL, a dead machine) this thread
freezes with it, the lease runs out and the reaper hands the task to another worker.
"""

from __future__ import annotations

import logging
import threading

from django.db import close_old_connections, connection

from taskcenter import lifecycle

logger = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executions: set[int] = set()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def track(self, execution_id: int) -> None:
        with self._lock:
            self._executions.add(execution_id)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="taskcenter-heartbeat", daemon=True
                )
                self._thread.start()

    def untrack(self, execution_id: int) -> None:
        with self._lock:
            self._executions.discard(execution_id)

    def _run(self) -> None:
        while True:
            # Renew at a third of the lease: two heartbeats can fail before the lease is lost.
            self._wake.wait(lifecycle.lease_seconds() / 3)
            with self._lock:
                ids = sorted(self._executions)
            if not ids:
                continue
            try:
                close_old_connections()
                lifecycle.renew_leases(ids)
            except Exception:
                logger.exception("Could not renew leases of executions %s", ids)
                connection.close()


heartbeat = Heartbeat()
