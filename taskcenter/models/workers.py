"""The worker registry: one row per worker process, so operators can see who runs what.

A worker inserts its row when it starts, refreshes it from its heartbeat thread (one UPDATE per
beat, whatever the number of attempts it runs) and stamps ``stopped_at`` when it exits cleanly.
A row whose beats stopped without that stamp is a dead worker (SIGKILL, OOM, a lost machine);
its attempts are the ones the reaper recovered, found by the worker's name on the execution
rows (``TaskExecution.worker_id``). Written only by ``taskcenter.execution.worker_registry``.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class WorkerEngine(models.TextChoices):
    DATABASE = "database", _("database")
    """``run_worker`` claiming django-tasks-db's jobs (SQLite or PostgreSQL)."""

    RQ = "rq", _("RQ")
    """``run_worker`` on the RQ engine (Redis)."""


class WorkerState(models.TextChoices):
    ALIVE = "alive", _("alive")
    """Beating."""

    DEAD = "dead", _("dead")
    """Stopped beating without saying goodbye."""

    STOPPED = "stopped", _("stopped")
    """Exited cleanly."""


class WorkerProcessQuerySet(models.QuerySet["WorkerProcess"]):
    def alive(self, *, silent_since: datetime) -> WorkerProcessQuerySet:
        """Not stopped, and seen at or after ``silent_since`` (now minus the dead-after time)."""
        return self.filter(stopped_at__isnull=True, last_seen_at__gte=silent_since)

    def dead(self, *, silent_since: datetime) -> WorkerProcessQuerySet:
        return self.filter(stopped_at__isnull=True, last_seen_at__lt=silent_since)

    def stopped(self) -> WorkerProcessQuerySet:
        return self.filter(stopped_at__isnull=False)

    def gone_before(self, cutoff: datetime) -> WorkerProcessQuerySet:
        """Stopped or silent since before ``cutoff``: what the retention prunes."""
        return self.filter(
            Q(stopped_at__lt=cutoff) | Q(stopped_at__isnull=True, last_seen_at__lt=cutoff)
        )


class WorkerProcess(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # What the worker calls itself and writes on its executions (``run_worker --worker-id``,
    # host:pid by default). Not unique: a worker restarted with the same --worker-id gets a new
    # row, and its attempts are told apart by time.
    name = models.CharField(_("name"), max_length=100, db_index=True)
    host = models.CharField(_("host"), max_length=255)
    pid = models.PositiveIntegerField(_("pid"))
    engine = models.CharField(_("engine"), max_length=16, choices=WorkerEngine.choices)
    queues = models.JSONField(_("queues"), default=list)
    concurrency = models.PositiveIntegerField(_("concurrency"), default=1)
    busy = models.PositiveIntegerField(_("busy slots"), default=0)
    running_attempts = models.JSONField(_("running attempts"), default=list, blank=True)
    attempts_run = models.BigIntegerField(_("attempts run"), default=0)
    # Attempts that ended in ``poll_again`` (a remote platform or a busy account said "later"):
    # they free the slot and are dispatched again, so a worker's attempt count is mostly these
    # on polling kinds.
    attempts_deferred = models.BigIntegerField(_("poll-again re-dispatches"), default=0)
    outcomes = models.JSONField(_("outcomes"), default=dict, blank=True)
    version = models.CharField(_("version"), max_length=40, blank=True)
    started_at = models.DateTimeField(_("started at"))
    last_seen_at = models.DateTimeField(_("last seen"))
    stopped_at = models.DateTimeField(_("stopped at"), null=True, blank=True)

    objects = WorkerProcessQuerySet.as_manager()

    class Meta:
        verbose_name = _("worker")
        verbose_name_plural = _("workers")
        ordering = ["-started_at"]
        indexes = [
            # Alive/dead lists and the retention: open rows by last beat.
            models.Index(fields=["stopped_at", "last_seen_at"], name="worker_stopped_seen_idx"),
            models.Index(fields=["-started_at"], name="worker_started_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def state(self, *, silent_since: datetime) -> str:
        if self.stopped_at is not None:
            return WorkerState.STOPPED
        if self.last_seen_at < silent_since:
            return WorkerState.DEAD
        return WorkerState.ALIVE

    def attempts_until(self, *, grace: timedelta) -> datetime:
        """The end of the window in which executions named after this worker are its own."""
        return (self.stopped_at or self.last_seen_at) + grace
