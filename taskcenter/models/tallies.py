"""Statistics tallies: counts kept exact by database triggers (``tally_triggers``)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class TaskTally(models.Model):
    """Running count of tasks per owner, status, type and platform, kept by database triggers.

    The statistics endpoint reads these few rows instead of counting a million tasks. Triggers
    (see ``taskcenter.models.tally_triggers``) update them in the same transaction as every
    insert, status change and delete of a task, whichever code path or tool makes it, so they
    cannot drift.
    ``owner_id`` is a plain column: a foreign key would cascade before the tasks' own deletes.
    """

    owner_id = models.BigIntegerField(_("owner id"))
    status = models.CharField(_("status"), max_length=16)
    task_type = models.CharField(_("type"), max_length=100)
    platform = models.CharField(_("platform"), max_length=50)
    n = models.BigIntegerField(_("tasks"), default=0)

    class Meta:
        verbose_name = _("task tally")
        constraints = [
            models.UniqueConstraint(
                fields=["owner_id", "status", "task_type", "platform"], name="task_tally_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.owner_id}/{self.status}/{self.task_type}/{self.platform}: {self.n}"


class DurationTally(models.Model):
    """Histogram of completed attempts' durations per owner, type and platform (triggers too).

    ``bin`` is a log-scale bucket (``tally_triggers.duration_bin``): four per doubling, so a
    percentile read from it is within 9% of the exact value.
    """

    owner_id = models.BigIntegerField(_("owner id"))
    task_type = models.CharField(_("type"), max_length=100)
    platform = models.CharField(_("platform"), max_length=50)
    bin = models.SmallIntegerField(_("duration bin"))
    n = models.BigIntegerField(_("attempts"), default=0)

    class Meta:
        verbose_name = _("duration tally")
        constraints = [
            models.UniqueConstraint(
                fields=["owner_id", "task_type", "platform", "bin"], name="duration_tally_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.owner_id}/{self.task_type}/{self.platform} bin {self.bin}: {self.n}"
