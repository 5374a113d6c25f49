"""Task Center's core records: the task, each attempt at running it, and its audit trail.

Nothing here changes ``status``: every transition lives in ``taskcenter.lifecycle``.
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .visibility import TaskChildQuerySet, TaskQuerySet


class Status(models.TextChoices):
    PENDING = "PENDING", _("Pending")
    """Created, not started yet."""

    QUEUED = "QUEUED", _("Queued")
    """Waiting for a worker, perhaps until ``run_after``."""

    RUNNING = "RUNNING", _("Running")
    """A worker holds an attempt, or a remote platform is being polled."""

    COMPLETED = "COMPLETED", _("Completed")
    """Finished successfully."""

    FAILED = "FAILED", _("Failed")
    """Gave up: a permanent error, or every attempt failed."""

    STOPPED = "STOPPED", _("Stopped")
    """Paused by a user; can be started again."""

    CANCELLED = "CANCELLED", _("Cancelled")
    """Called off by a user; terminal."""


class ExecutionStatus(models.TextChoices):
    RUNNING = "RUNNING", _("Running")
    """A worker is running the handler and renewing the lease."""

    WAITING = "WAITING", _("Waiting")
    """The handler asked to be called again later; no worker holds it meanwhile."""

    COMPLETED = "COMPLETED", _("Completed")
    """The handler returned."""

    FAILED = "FAILED", _("Failed")
    """The handler raised."""

    STOPPED = "STOPPED", _("Stopped")
    """The task was stopped while this attempt ran."""

    CANCELLED = "CANCELLED", _("Cancelled")
    """The task was cancelled while this attempt ran."""

    LOST = "LOST", _("Lost")
    """Its worker vanished; the lease expired and the reaper took it over."""


class WaitingFor(models.TextChoices):
    PLATFORM = "platform", _("platform")
    """The handler polls a remote platform (``ctx.poll_again``)."""

    ACCOUNT = "account", _("account")
    """The platform account is busy with another task or resting (``ctx.hold_account``)."""


class EventVerb(models.TextChoices):
    CREATED = "created", _("created")
    QUEUED = "queued", _("queued")
    STARTED = "started", _("started")
    PROGRESS = "progress", _("progress")
    WAITING = "waiting", _("waiting")
    RESUMED = "resumed", _("resumed")
    STOPPED = "stopped", _("stopped")
    CANCELLED = "cancelled", _("cancelled")
    RETRIED = "retried", _("retried")
    REQUEUED = "requeued", _("requeued")
    FAILED = "failed", _("failed")
    COMPLETED = "completed", _("completed")
    LOST = "lost", _("lost")
    UPDATED = "updated", _("updated")


ACTIVE_STATUSES = frozenset({Status.QUEUED, Status.RUNNING})
FINISHED_STATUSES = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})


# The task's filter columns and the names of their indexes.
FILTER_COLUMN_INDEXES = {
    "task_type": "task_type_idx",
    "platform": "task_platform_idx",
    "action": "task_action_idx",
    "external_id": "task_external_idx",
    "account_id": "task_account_idx",
    "proxy_id": "task_proxy_idx",
    "data_source_id": "task_data_source_idx",
    "batch_id": "task_batch_idx",
}


class Task(models.Model):
    name = models.CharField(_("name"), max_length=200, blank=True)
    description = models.TextField(_("description"), blank=True)
    # The filter columns below are indexed in Meta, not with ``db_index``: on PostgreSQL that
    # makes a second, ``LIKE 'prefix%'`` index per column, written at every status change.
    task_type = models.CharField(_("type"), max_length=100)
    platform = models.CharField(_("platform"), max_length=50, blank=True)
    action = models.CharField(_("action"), max_length=50, blank=True)
    # Indexed by the list indexes, which all start with it (see Meta).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="tasks",
        verbose_name=_("owner"),
        db_index=False,
    )
    parameters = models.JSONField(_("parameters"), default=dict, blank=True)

    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    progress = models.PositiveSmallIntegerField(
        _("progress"), default=0, validators=[MaxValueValidator(100)]
    )
    progress_message = models.CharField(_("progress message"), max_length=255, blank=True)
    priority = models.SmallIntegerField(
        _("priority"),
        default=0,
        validators=[MinValueValidator(-100), MaxValueValidator(100)],
        help_text=_("-100 (last) to 100 (first)."),
    )
    # ``attempts`` counts attempts since the last start or retry and is what ``max_attempts``
    # limits; ``total_attempts`` never resets and numbers the executions. The latter is also
    # the fence: an outcome is only accepted from the execution whose number it holds.
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    total_attempts = models.PositiveIntegerField(_("total attempts"), default=0)
    # Attempts whose worker vanished (the reaper found their lease expired). They are the
    # system's fault, so they give back the attempt they took; this counts them separately,
    # since the last start or retry, against the kind's ``max_lost_attempts`` (a task that
    # kills its worker every time must end some day).
    lost_attempts = models.PositiveIntegerField(_("lost attempts"), default=0)
    max_attempts = models.PositiveSmallIntegerField(
        _("max attempts"), default=3, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    run_after = models.DateTimeField(_("run after"), null=True, blank=True)

    quota = models.BigIntegerField(_("quota charged"), default=0)
    quota_refunded_at = models.DateTimeField(_("quota refunded at"), null=True, blank=True)

    error_message = models.TextField(_("error message"), blank=True)
    result = models.JSONField(_("result"), null=True, blank=True)
    external_id = models.CharField(_("external id"), max_length=128, blank=True)
    remote_status = models.CharField(_("remote status"), max_length=64, blank=True)

    # References carried over from the systems Task Center replaces (seeds 001-004).
    account_id = models.CharField(_("account id"), max_length=64, blank=True)
    proxy_id = models.CharField(_("proxy id"), max_length=64, blank=True)
    integration_id = models.BigIntegerField(_("integration id"), null=True, blank=True)
    # Empty on most tasks: their indexes (in Meta) hold only the tasks that have one.
    client_id = models.BigIntegerField(_("client id"), null=True, blank=True)
    template_id = models.BigIntegerField(_("template id"), null=True, blank=True)
    channel_id = models.BigIntegerField(_("channel id"), null=True, blank=True)
    data_source_id = models.CharField(_("data source id"), max_length=64, blank=True)
    batch_id = models.CharField(_("batch id"), max_length=64, blank=True)

    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)
    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    objects = TaskQuerySet.as_manager()

    class Meta:
        verbose_name = _("task")
        verbose_name_plural = _("tasks")
        ordering = ["-created_at", "-id"]
        # The list indexes end in the ordering's tie-break (``-id``): tasks submitted together
        # share a ``created_at`` (one ``create_tasks`` call: up to 10,000), and an index without
        # it left every page of them to a sort of all the ties (20-34 ms a page at 10,000 on
        # SQLite, under 1 ms with it).
        indexes = [
            # List pages: a user's tasks by status, newest first; staff by status/platform.
            models.Index(
                fields=["owner", "status", "-created_at", "-id"], name="task_owner_status_idx"
            ),
            # A user's list filtered by status and platform: count and page from the index alone.
            models.Index(
                fields=["owner", "status", "platform", "-created_at", "-id"],
                name="task_owner_stat_plat_idx",
            ),
            models.Index(fields=["owner", "-created_at", "-id"], name="task_owner_created_idx"),
            models.Index(
                fields=["status", "platform", "-created_at", "-id"], name="task_status_plat_idx"
            ),
            models.Index(fields=["status", "-created_at", "-id"], name="task_status_created_idx"),
            models.Index(fields=["-created_at", "-id"], name="task_created_idx"),
            models.Index(fields=["finished_at"], name="task_finished_idx"),
            # Queue depth by kind, platform and account, and the oldest queued task
            # (``execution.queues``): only queued rows, a small index even at a million tasks.
            models.Index(
                fields=["task_type", "platform", "account_id", "updated_at", "run_after"],
                name="task_queued_depth_idx",
                condition=models.Q(status="QUEUED"),
            ),
            # Failure triage reads the newest failures of a window; failures are a small share
            # of the table, so a partial index keeps that read off the other finished tasks.
            models.Index(
                fields=["-finished_at"],
                name="task_failed_finished_idx",
                condition=models.Q(status="FAILED"),
            ),
            # The integration tasks table's composite "idx_task": one batch of an integration.
            # Partial, as the three after it: a column most tasks leave empty costs every task
            # an index entry (a page written at each submission) and is looked up only by a
            # value; SQLite and PostgreSQL both use such an index for ``column = value``.
            models.Index(
                fields=["integration_id", "client_id", "template_id"],
                name="task_integration_idx",
                condition=models.Q(integration_id__isnull=False),
            ),
            *(
                models.Index(
                    fields=[column],
                    name=f"task_{column.removesuffix('_id')}_idx",
                    condition=models.Q(**{f"{column}__isnull": False}),
                )
                for column in ("client_id", "template_id", "channel_id")
            ),
            # Filters by one column. No ``varchar_pattern_ops`` twins (``db_index=True`` on
            # PostgreSQL): nothing searches these by prefix, and a twin is one more index entry
            # written at every status change (a no-op task: 14 % of its WAL).
            *(
                models.Index(fields=[column], name=name)
                for column, name in FILTER_COLUMN_INDEXES.items()
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(progress__gte=0, progress__lte=100), name="task_progress_range"
            ),
            models.CheckConstraint(
                condition=models.Q(priority__gte=-100, priority__lte=100),
                name="task_priority_range",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.name or self.task_type}"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES


class TaskExecution(models.Model):
    # Indexed by ``exec_task_attempt_unique``, which starts with it.
    task = models.ForeignKey(
        Task,
        on_delete=models.CASCADE,
        related_name="executions",
        verbose_name=_("task"),
        db_index=False,
    )
    attempt = models.PositiveIntegerField(_("attempt"))
    worker_id = models.CharField(_("worker"), max_length=100, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=ExecutionStatus.choices, default=ExecutionStatus.RUNNING
    )
    account_id = models.CharField(_("account id"), max_length=64, blank=True)
    proxy_id = models.CharField(_("proxy id"), max_length=64, blank=True)
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    duration = models.FloatField(_("duration (s)"), null=True, blank=True)
    result_count = models.PositiveIntegerField(_("result count"), default=0)
    error_message = models.TextField(_("error message"), blank=True)
    traceback = models.TextField(_("traceback"), blank=True)
    lease_expires_at = models.DateTimeField(_("lease expires at"), null=True, blank=True)
    heartbeat_at = models.DateTimeField(_("last heartbeat"), null=True, blank=True)
    # What a WAITING execution waits for (set by ``defer_attempt``). Nullable so that adding
    # it is an ALTER TABLE ADD COLUMN on SQLite: a NOT NULL column would rebuild the table and
    # drop the tally triggers on it.
    waiting_for = models.CharField(  # noqa: DJ001
        _("waiting for"), max_length=16, choices=WaitingFor.choices, null=True, blank=True
    )

    objects = TaskChildQuerySet.as_manager()

    class Meta:
        verbose_name = _("task execution")
        verbose_name_plural = _("task executions")
        ordering = ["-started_at", "-id"]
        indexes = [
            # The reaper's scan: open executions whose lease ran out.
            models.Index(fields=["status", "lease_expires_at"], name="exec_status_lease_idx"),
            models.Index(fields=["status", "-started_at"], name="exec_status_started_idx"),
            models.Index(fields=["-started_at"], name="exec_started_idx"),
            # Lost attempts by worker (the worker registry) and in total (metrics).
            models.Index(
                fields=["worker_id", "started_at"],
                name="exec_lost_worker_idx",
                condition=models.Q(status="LOST"),
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["task", "attempt"], name="exec_task_attempt_unique"),
        ]

    def __str__(self) -> str:
        return f"task #{self.task_id} attempt {self.attempt}"


class TaskEvent(models.Model):
    """Append-only audit trail: one row per transition, with who did it."""

    # Indexed by ``event_task_at_idx``, which starts with it.
    task = models.ForeignKey(
        Task,
        on_delete=models.CASCADE,
        related_name="events",
        verbose_name=_("task"),
        db_index=False,
    )
    # Empty on the events no attempt made (created, queued, stopped...): ``event_execution_idx``
    # holds the others only.
    execution = models.ForeignKey(
        TaskExecution,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="events",
        verbose_name=_("execution"),
        db_index=False,
    )
    # Empty on the events workers and the system write (most of them: an attempt's start and
    # end): ``event_actor_user_idx`` holds the users' events only.
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("user"),
        db_index=False,
    )
    actor = models.CharField(_("actor"), max_length=120)
    verb = models.CharField(_("verb"), max_length=16, choices=EventVerb.choices)
    from_status = models.CharField(_("from"), max_length=16, blank=True)
    to_status = models.CharField(_("to"), max_length=16, blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)
    at = models.DateTimeField(_("at"), default=timezone.now)

    objects = TaskChildQuerySet.as_manager()

    class Meta:
        verbose_name = _("task event")
        verbose_name_plural = _("task events")
        ordering = ["at", "id"]
        indexes = [
            models.Index(fields=["task", "at"], name="event_task_at_idx"),
            models.Index(
                fields=["execution"],
                name="event_execution_idx",
                condition=models.Q(execution__isnull=False),
            ),
            models.Index(
                fields=["actor_user"],
                name="event_actor_user_idx",
                condition=models.Q(actor_user__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"task #{self.task_id} {self.verb} by {self.actor}"
