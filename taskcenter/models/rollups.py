"""Time-bucketed rollups behind the admin's charts: what finished in each minute, and how long
the queue was.

The tallies (``tallies``) are counts of now; charts need history. These rows are written by the
reaper's periodic fold (``rollup_fold``) from the tasks that finished since its cursor, never on
a task's own write path. A minute's rows are rewritten while it is recent (late commits land
in them) and frozen after that, so pruning old tasks does not change the history; rows older
than ``rollup_fold.RETENTION`` are pruned.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class ThroughputRollup(models.Model):
    """Tasks that finished in one minute, per kind and platform, by outcome."""

    minute = models.DateTimeField(_("minute"))
    task_type = models.CharField(_("type"), max_length=100)
    platform = models.CharField(_("platform"), max_length=50)
    completed = models.PositiveIntegerField(_("completed"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)
    cancelled = models.PositiveIntegerField(_("cancelled"), default=0)
    # Completed tasks whose finishing attempt has a duration, and the sum of those durations.
    timed = models.PositiveIntegerField(_("timed"), default=0)
    duration_sum = models.FloatField(_("duration sum (s)"), default=0.0)

    class Meta:
        verbose_name = _("throughput rollup")
        constraints = [
            models.UniqueConstraint(
                fields=["minute", "task_type", "platform"], name="throughput_rollup_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} {self.task_type}/{self.platform}"


class DurationRollup(models.Model):
    """Histogram of the finishing attempt's duration of tasks completed in one minute, per kind.

    ``bin`` is the statistics tallies' log-scale bucket (``tally_triggers.duration_bin``, four
    per doubling): a percentile read from it is within 9% of the exact value.
    """

    minute = models.DateTimeField(_("minute"))
    task_type = models.CharField(_("type"), max_length=100)
    bin = models.SmallIntegerField(_("duration bin"))
    n = models.PositiveIntegerField(_("tasks"), default=0)

    class Meta:
        verbose_name = _("duration rollup")
        constraints = [
            models.UniqueConstraint(
                fields=["minute", "task_type", "bin"], name="duration_rollup_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} {self.task_type} bin {self.bin}: {self.n}"


class QueueDepthSample(models.Model):
    """How many tasks were waiting and running, sampled once a minute from the tallies."""

    minute = models.DateTimeField(_("minute"), unique=True)
    queued = models.PositiveIntegerField(_("queued"), default=0)
    running = models.PositiveIntegerField(_("running"), default=0)

    class Meta:
        verbose_name = _("queue depth sample")

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M}: {self.queued} queued, {self.running} running"


class RollupCursor(models.Model):
    """Where the fold stopped: minutes before ``folded_until`` are final (one row)."""

    name = models.CharField(_("name"), max_length=32, unique=True)
    folded_until = models.DateTimeField(_("folded until"))

    class Meta:
        verbose_name = _("rollup cursor")

    def __str__(self) -> str:
        return f"{self.name}: {self.folded_until:%Y-%m-%d %H:%M}"
