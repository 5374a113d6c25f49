"""Statistics tallies: counts kept exact by database triggers (``tally_triggers``)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class TaskTally(models.Model):
    """Running count of tasks per owner, status, type and platform, kept by database triggers.

    The statistics endpoint reads these few rows instead of counting a million tasks. Triggers
    (see ``taskcenter.models.tally_triggers``) update them in the same transaction as every
    insert, status change and delete of a task, whichever code path or tool makes it, so they
    cannot drift.
    A key's count is the sum of its rows over ``shard``: concurrent writers on PostgreSQL each
    add to a shard of their own (1..``tally_triggers.SHARDS``) and the fold
    (``taskcenter.models.tally_fold``) moves those into shard 0, which holds the rest.
    ``owner_id`` is a plain column: a foreign key would cascade before the tasks' own deletes.
    """

    owner_id = models.BigIntegerField(_("owner id"))
    status = models.CharField(_("status"), max_length=16)
    task_type = models.CharField(_("type"), max_length=100)
    platform = models.CharField(_("platform"), max_length=50)
    shard = models.SmallIntegerField(_("shard"), default=0)
    n = models.BigIntegerField(_("tasks"), default=0)

    class Meta:
        verbose_name = _("task tally")
        constraints = [
            models.UniqueConstraint(
                fields=["owner_id", "status", "task_type", "platform", "shard"],
                name="task_tally_shard_key",
            )
        ]

    def __str__(self) -> str:
        key = f"{self.owner_id}/{self.status}/{self.task_type}/{self.platform}"
        return f"{key} shard {self.shard}: {self.n}"


class DurationTally(models.Model):
    """Histogram of completed attempts' durations per owner, type and platform (triggers too).

    ``bin`` is a log-scale bucket (``tally_triggers.duration_bin``): four per doubling, so a
    percentile read from it is within 9% of the exact value. Sharded like ``TaskTally``.
    """

    owner_id = models.BigIntegerField(_("owner id"))
    task_type = models.CharField(_("type"), max_length=100)
    platform = models.CharField(_("platform"), max_length=50)
    bin = models.SmallIntegerField(_("duration bin"))
    shard = models.SmallIntegerField(_("shard"), default=0)
    n = models.BigIntegerField(_("attempts"), default=0)

    class Meta:
        verbose_name = _("duration tally")
        constraints = [
            models.UniqueConstraint(
                fields=["owner_id", "task_type", "platform", "bin", "shard"],
                name="duration_tally_shard_key",
            )
        ]

    def __str__(self) -> str:
        key = f"{self.owner_id}/{self.task_type}/{self.platform} bin {self.bin}"
        return f"{key} shard {self.shard}: {self.n}"
