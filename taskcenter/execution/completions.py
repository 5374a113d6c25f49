"""Group commit: the completions of attempts that ended together, written in one transaction.

A handler that returns hands its result here instead of committing it; the worker's loop
writes whatever has gathered (``lifecycle.complete_attempts``) before its next claim. While the
loop is busy writing or claiming, more attempts end and join the next group, so the busier the
worker, the larger its groups and the fewer its transactions: on SQLite each is a turn at the
one write lock, on PostgreSQL a commit and, per statement, a round trip and a run of the tally
triggers.

A completion waits in memory for at most one pass of the loop. If the process dies meanwhile
its attempt is lost like any attempt of a dead worker: the reaper finds the lease run out and
runs the task again.
"""

from __future__ import annotations

import logging
import threading

from taskcenter import lifecycle
from taskcenter.lib.db_outage import retry_while_unavailable

logger = logging.getLogger(__name__)


class PendingCompletions:
    """Completions waiting to be written; ``add`` from any thread, ``flush`` from the loop."""

    def __init__(self) -> None:
        self._waiting: list[lifecycle.Completion] = []
        self._lock = threading.Lock()
        self.groups = 0
        self.discarded = 0

    def add(self, completion: lifecycle.Completion) -> None:
        with self._lock:
            self._waiting.append(completion)

    def __len__(self) -> int:
        return len(self._waiting)

    def flush(self) -> int:
        """Write every waiting completion; returns how many were written.

        Completions whose task was stopped, cancelled or reaped meanwhile close their attempt to
        match (``interrupt_attempt``), as a refused ``complete_attempt`` does. If the database
        stays unreachable longer than a lease the error propagates and the group waits for the
        next flush: each completion is fenced, so writing it twice is refused, not doubled.
        """
        with self._lock:
            group, self._waiting = self._waiting, []
        if not group:
            return 0
        try:
            refused = retry_while_unavailable(
                lambda: lifecycle.complete_attempts(group),
                what=f"completing {len(group)} attempt(s)",
                patience=lifecycle.lease_seconds(),
            )
        except BaseException:
            with self._lock:
                self._waiting[:0] = group
            raise
        for completion in refused:
            lifecycle.interrupt_attempt(completion.execution)
        self.groups += 1
        self.discarded += len(refused)
        return len(group) - len(refused)
