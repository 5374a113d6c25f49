"""Which worker processes exist, what they run, and which ones died.

Each ``run_worker`` process (either engine) calls ``register`` when it starts: one row in
``WorkerProcess``. The heartbeat thread that renews its attempts' leases refreshes the row on
the same beat (``Registration.beat``: one UPDATE, whatever the number of attempts). A clean exit
calls ``Registration.stop``, which stamps ``stopped_at``. A row not refreshed for ``dead_after``
(one lease: three beats missed) and never stopped is a dead worker; the reaper recovers its
attempts through their leases as before, and they stay linked to it by the name on each
execution (``TaskExecution.worker_id``) within the worker's lifetime. Rows stopped or dead for
longer than ``TASKCENTER["WORKER_RETENTION_SECONDS"]`` are pruned by the reaper.

``workers_alive`` and ``lost_attempts_total`` are what the metrics endpoint reads.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

import taskcenter
from taskcenter import lifecycle
from taskcenter.execution.heartbeat import heartbeat
from taskcenter.lib.db_outage import DATABASE_ERRORS
from taskcenter.models import ExecutionStatus, TaskExecution, WorkerProcess

logger = logging.getLogger(__name__)

# The outcome a runner returns for an attempt that ended in ``poll_again``.
DEFERRED_OUTCOME = "waiting"
# A busy worker's row lists at most this many of its running attempts.
MAX_LISTED_ATTEMPTS = 200

# (attempts finished, outcomes by name) so far in this process.
Counters = Callable[[], tuple[int, dict[str, int]]]


class OutcomeCounter:
    """Outcomes of the attempts this process ran (``runner`` adds to it; thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, outcome: str) -> None:
        with self._lock:
            self._counts[outcome] += 1

    def snapshot(self) -> tuple[int, dict[str, int]]:
        with self._lock:
            return sum(self._counts.values()), dict(self._counts)


process_outcomes = OutcomeCounter()


def dead_after() -> timedelta:
    """Silence after which an unstopped worker is dead: one lease, i.e. three missed beats
    (the heartbeat beats every third of a lease), when its attempts' leases run out too."""
    return timedelta(seconds=lifecycle.lease_seconds())


def retention() -> timedelta:
    return timedelta(seconds=float(settings.TASKCENTER["WORKER_RETENTION_SECONDS"]))


def silent_since(now: datetime | None = None) -> datetime:
    """Workers last seen before this moment (and not stopped) are dead."""
    return (now or timezone.now()) - dead_after()


class Registration:
    """This process's row in the registry, kept fresh by the heartbeat thread."""

    def __init__(
        self,
        *,
        name: str,
        engine: str,
        queues: tuple[str, ...],
        concurrency: int,
        counters: Counters,
    ) -> None:
        self.name = name
        self.engine = engine
        self.queues = list(queues)
        self.concurrency = concurrency
        self.counters = counters
        self.pk = uuid.uuid4()
        self._registered = False

    def start(self) -> None:
        """Insert the row (later, on a beat, if the database is away now) and start beating."""
        self._insert()
        heartbeat.attach(self.beat)

    def _insert(self) -> None:
        now = timezone.now()
        try:
            WorkerProcess.objects.create(
                id=self.pk,
                name=self.name[:100],
                host=socket.gethostname()[:255],
                pid=os.getpid(),
                engine=self.engine,
                queues=self.queues,
                concurrency=self.concurrency,
                version=taskcenter.__version__,
                started_at=now,
                last_seen_at=now,
            )
        except DATABASE_ERRORS:
            logger.exception("Could not register worker %s; will try on the next beat", self.name)
            return
        self._registered = True

    def _fields(self, running: list[int]) -> dict[str, object]:
        finished, outcomes = self.counters()
        return {
            "last_seen_at": timezone.now(),
            # Claimed attempts waiting their turn (a one-slot worker claims small batches) hold
            # a lease and are listed, but use no slot yet.
            "busy": min(len(running), self.concurrency),
            "running_attempts": running[:MAX_LISTED_ATTEMPTS],
            "attempts_run": finished,
            "attempts_deferred": outcomes.get(DEFERRED_OUTCOME, 0),
            "outcomes": outcomes,
        }

    def beat(self, running: list[int]) -> None:
        """One UPDATE: last seen, busy slots, the attempts it runs, its counters."""
        if not self._registered:
            self._insert()
            if not self._registered:
                return
        updated = WorkerProcess.objects.filter(pk=self.pk).update(**self._fields(running))
        if updated == 0:
            # Pruned while frozen for longer than the retention: come back as a new row.
            self._registered = False
            self.pk = uuid.uuid4()

    def stop(self) -> None:
        """A clean exit: stop beating and stamp ``stopped_at``."""
        heartbeat.detach(self.beat)
        if not self._registered:
            return
        try:
            fields = self._fields([])
            WorkerProcess.objects.filter(pk=self.pk).update(
                stopped_at=fields["last_seen_at"], **fields
            )
        except DATABASE_ERRORS:
            logger.exception("Could not record that worker %s stopped", self.name)


def register(
    *,
    name: str,
    engine: str,
    queues: tuple[str, ...],
    concurrency: int,
    counters: Counters = process_outcomes.snapshot,
) -> Registration:
    """Register this process as a worker and keep its row fresh until ``stop()``."""
    registration = Registration(
        name=name, engine=engine, queues=queues, concurrency=concurrency, counters=counters
    )
    registration.start()
    return registration


# --- reading ---------------------------------------------------------------------------------


def workers_alive(now: datetime | None = None) -> int:
    """Worker processes beating now."""
    return WorkerProcess.objects.alive(silent_since=silent_since(now)).count()


def lost_attempts_total() -> int:
    """Attempts ever closed LOST (a worker vanished or lost its database) and still stored."""
    return TaskExecution.objects.filter(status=ExecutionStatus.LOST).count()


def lost_attempts(worker: WorkerProcess) -> QuerySet[TaskExecution]:
    """The attempts of ``worker`` that the reaper (or the worker itself) gave up as LOST."""
    return TaskExecution.objects.filter(
        status=ExecutionStatus.LOST,
        worker_id=worker.name,
        started_at__gte=worker.started_at,
        started_at__lte=worker.attempts_until(grace=dead_after()),
    )


def prune(now: datetime | None = None) -> int:
    """Delete rows of workers stopped or dead for longer than the retention."""
    cutoff = (now or timezone.now()) - retention()
    deleted, _ = WorkerProcess.objects.gone_before(cutoff).delete()
    return deleted
