"""A per-process thread that renews the leases of every attempt this process is running.

Handlers that block on a slow platform for minutes never call ``ctx.progress``; their lease is
kept alive here. If the whole process freezes (SIGSTOP, a stuck GIL, a dead machine) this thread
freezes with it, the lease runs out and the reaper hands the task to another worker.

The same beat refreshes the worker's row in the registry (``worker_registry``, attached as a
listener): one more UPDATE per beat, however many attempts run, and none per attempt.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.db import close_old_connections, connection

from taskcenter import lifecycle

logger = logging.getLogger(__name__)


# Called on every beat with the executions whose leases this process holds (perhaps none).
BeatListener = Callable[[list[int]], None]


class Heartbeat:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executions: set[int] = set()
        self._listeners: list[BeatListener] = []
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def track(self, execution_id: int) -> None:
        with self._lock:
            self._executions.add(execution_id)
            self._ensure_thread()

    def attach(self, listener: BeatListener) -> None:
        """Call ``listener`` on every beat, from now on, even while no attempt runs."""
        with self._lock:
            self._listeners.append(listener)
            self._ensure_thread()

    def detach(self, listener: BeatListener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _ensure_thread(self) -> None:
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
                listeners = list(self._listeners)
            if not ids and not listeners:
                continue
            try:
                close_old_connections()
                if ids:
                    lifecycle.renew_leases(ids)
            except Exception:
                logger.exception("Could not renew leases of executions %s", ids)
                connection.close()
            for listener in listeners:
                try:
                    listener(ids)
                except Exception:
                    logger.exception("Heartbeat listener %r failed", listener)
                    connection.close()


heartbeat = Heartbeat()
