"""Rows collected by tasks: the results sink behind ``ctx.save_results``."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from taskcenter.models import Task, TaskExecution
from taskcenter.models.visibility import TaskChildQuerySet


class ScrapeResult(models.Model):
    task = models.ForeignKey(
        Task, on_delete=models.CASCADE, related_name="results", verbose_name=_("task")
    )
    execution = models.ForeignKey(
        TaskExecution,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="results",
        verbose_name=_("execution"),
    )
    data_type = models.CharField(_("data type"), max_length=50, blank=True)
    data = models.JSONField(_("data"), default=dict)
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)
    # The item's id on the platform; a re-run or resumed task skips items it already stored.
    # NULL, not "", for "no key": NULLs never collide in the unique constraint below.
    item_key = models.CharField(_("item key"), max_length=200, null=True, blank=True)  # noqa: DJ001
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    objects = TaskChildQuerySet.as_manager()

    class Meta:
        verbose_name = _("scrape result")
        verbose_name_plural = _("scrape results")
        ordering = ["id"]
        indexes = [models.Index(fields=["task", "data_type", "id"], name="result_task_type_idx")]
        constraints = [
            models.UniqueConstraint(fields=["task", "item_key"], name="result_task_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.data_type or 'result'} of task #{self.task_id}"
