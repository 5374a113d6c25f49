"""Collected results in the operators' console: read-only, searchable, exportable.

The table can hold millions of rows, so the list never counts them all (``CappedCountPaginator``)
and the data-type filter reads only the newest rows.
"""

from __future__ import annotations

import json

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from taskcenter.admin.base import ReadOnlyModelAdmin
from taskcenter.admin.dashboard import CappedCountPaginator
from taskcenter.admin.registry import add_task_action
from taskcenter.admin.tasks import pretty_json

from .export import export_action
from .models import ScrapeResult

SUMMARY_CHARS = 80


class DataTypeFilter(admin.SimpleListFilter):
    """The data types of the latest results. A DISTINCT over every row would scan the whole
    table (no index leads with ``data_type``) on each page view; the newest rows, read by
    primary key, name the types in use at a bounded cost."""

    title = _("data type")
    parameter_name = "data_type"
    RECENT = 10_000

    def lookups(self, request, model_admin):
        recent = ScrapeResult.objects.order_by("-id").values_list("data_type", flat=True)
        names = set(recent[: self.RECENT]) - {""}
        chosen = self.value()
        if chosen:
            names.add(chosen)
        return [(name, name) for name in sorted(names)]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(data_type=self.value())
        return queryset


@admin.register(ScrapeResult)
class ScrapeResultAdmin(ReadOnlyModelAdmin):
    list_display = ["id", "task_link", "data_type", "summary", "created_at"]
    list_filter = [DataTypeFilter]
    # "=": exact matches that use indexes; a task id that is not a number matches no task.
    search_fields = ["=data_type", "=task__id"]
    search_help_text = _("A data type (tweet, user) or a task id.")
    list_select_related = ["task"]
    list_per_page = 50
    show_full_result_count = False  # no COUNT(*) over millions of rows on every page
    paginator = CappedCountPaginator
    actions = [export_action("csv"), export_action("json")]
    fields = (
        "task",
        "execution",
        "data_type",
        "item_key",
        "created_at",
        "data_pretty",
        "metadata_pretty",
    )
    readonly_fields = fields

    @admin.display(description=_("task"), ordering="task_id")
    def task_link(self, obj: ScrapeResult) -> str:
        url = reverse("admin:taskcenter_task_change", args=[obj.task_id])
        return format_html('<a href="{}">#{} {}</a>', url, obj.task_id, obj.task.task_type)

    @admin.display(description=_("data"))
    def summary(self, obj: ScrapeResult) -> str:
        data = obj.data if isinstance(obj.data, dict) else {}
        text = data.get("text") or data.get("username") or json.dumps(obj.data)
        text = str(text)
        return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"

    @admin.display(description=_("data"))
    def data_pretty(self, obj: ScrapeResult) -> str:
        return pretty_json(obj.data)

    @admin.display(description=_("metadata"))
    def metadata_pretty(self, obj: ScrapeResult) -> str:
        return pretty_json(obj.metadata)


def _may_read_results(site: admin.AdminSite, request: HttpRequest) -> bool:
    """Exporting the results of selected tasks reads results: their view permission decides."""
    return site.get_model_admin(ScrapeResult).has_view_permission(request)


add_task_action(export_action("csv", of_tasks=True), allowed=_may_read_results)
