"""Operators' pages for publishing: records (filter, bulk retry and cancel), one batch's
progress per platform, files, and accounts (credentials never shown).

Record statuses are their tasks' statuses; every action goes through ``taskcenter.lifecycle``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404, HttpRequest
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from taskcenter import lifecycle
from taskcenter.admin.live import live_updates
from taskcenter.admin.tasks import lifecycle_action, status_badge
from taskcenter.api.status_words import PUBLISHING, word_for, words
from taskcenter.models import Status, Task

from . import admin_login
from .models import PlatformAccount, PublishTaskRecord, VideoFile

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


def _status_word(status: str) -> str:
    return str(word_for(status, PUBLISHING))


def _record_action(verb: str, transition: Callable, description: StrOrPromise) -> Callable:
    """The core bulk action, on each record's task, refusals counted in status words."""
    return lifecycle_action(
        verb,
        transition,
        description,
        task_field="task_id",
        noun=gettext_noop("record"),  # translated where the message is written
        status_label=_status_word,
        permission="change_task",
    )


class StatusWordFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status_word"

    def lookups(self, request, model_admin):
        return [(str(word), str(word)) for word in words(PUBLISHING)]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        statuses = [s for s in Status if word_for(s, PUBLISHING) == value]
        return queryset.filter(task__status__in=statuses)


class BatchFilter(admin.SimpleListFilter):
    """The most recent batches by name; any batch by ``?batch=<id>`` (its page links here)."""

    title = _("batch")
    parameter_name = "batch"
    RECENT = 15

    def lookups(self, request, model_admin):
        recent = PublishTaskRecord.objects.values_list("batch_id", flat=True).order_by(
            "-create_time"
        )[: self.RECENT * 20]
        batches = list(dict.fromkeys(recent))[: self.RECENT]
        return [(batch, batch[:12]) for batch in batches]

    def queryset(self, request, queryset):
        return queryset.filter(batch_id=self.value()) if self.value() else queryset


@admin.register(PublishTaskRecord)
class PublishTaskRecordAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "filename",
        "account_name",
        "platform_name",
        "badge",
        "batch_link",
        "task_link",
        "create_time",
    ]
    list_filter = [StatusWordFilter, "platform_name", "account", BatchFilter, "create_time"]
    search_fields = ["=id", "=batch_id", "filename", "account_name", "task__external_id"]
    list_select_related = ["task"]
    list_per_page = 50
    show_full_result_count = False
    actions = [
        _record_action("retried", lifecycle.retry_task, _("Retry selected records")),
        _record_action("cancelled", lifecycle.cancel_task, _("Cancel selected records")),
    ]
    fields = (
        "batch_link",
        "task_link",
        "filename",
        "file",
        "account",
        "account_name",
        "platform_name",
        "platform_type",
        "badge",
        "error",
        "remote",
        "create_time",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # records are made with their tasks, by /postVideo and friends

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_change_task_permission(self, request: HttpRequest) -> bool:
        """The rows are read-only; their bulk actions move the records' tasks, so the task
        admin's change permission decides."""
        return self.admin_site.get_model_admin(Task).has_change_permission(request)

    def get_urls(self):
        extra = [
            path(
                "batch/<str:batch_id>/",
                self.admin_site.admin_view(self.batch_view),
                name="publishing_publishtaskrecord_batch",
            )
        ]
        return extra + super().get_urls()

    def batch_view(self, request: HttpRequest, batch_id: str):
        """One batch's progress: per platform, how many records are in each status word."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        records = PublishTaskRecord.objects.filter(batch_id=batch_id)
        counts = list(
            records.values("platform_name", "task__status")
            .annotate(n=Count("id"))
            .order_by("platform_name")
        )
        if not counts:
            raise Http404("No such batch")
        columns = [str(word) for word in words(PUBLISHING)]
        table: dict[str, Counter] = {}
        for row in counts:
            word = str(word_for(row["task__status"], PUBLISHING))
            table.setdefault(row["platform_name"], Counter())[word] += row["n"]
        finished_words = {
            str(word_for(s, PUBLISHING))
            for s in (Status.COMPLETED, Status.FAILED, Status.CANCELLED)
        }
        rows: list[dict[str, Any]] = []
        for platform, counter in sorted(table.items()):
            total = sum(counter.values())
            done = sum(counter[w] for w in finished_words)
            rows.append(
                {
                    "platform": platform,
                    "cells": [counter[w] for w in columns],
                    "total": total,
                    "percent": round(100 * done / total) if total else 0,
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Batch %(batch)s") % {"batch": batch_id},
            "batch_id": batch_id,
            # The counts follow the batch's task events (taskcenter's static/taskcenter/live.js).
            "live_updates": live_updates(query={"batch_id": batch_id}, refresh=True),
            "columns": columns,
            "rows": rows,
            "total": sum(r["total"] for r in rows),
            "records_url": reverse("admin:publishing_publishtaskrecord_changelist")
            + "?"
            + urlencode({"batch": batch_id}),
        }
        return TemplateResponse(request, "admin/publishing/batch.html", context)

    @admin.display(description=_("status"), ordering="task__status")
    def badge(self, obj: PublishTaskRecord) -> str:
        return status_badge(obj.task.status, obj.status)

    @admin.display(description=_("batch"), ordering="batch_id")
    def batch_link(self, obj: PublishTaskRecord) -> str:
        url = reverse("admin:publishing_publishtaskrecord_batch", args=[obj.batch_id])
        return format_html('<a href="{}">{}</a>', url, obj.batch_id[:12])

    @admin.display(description=_("task"))
    def task_link(self, obj: PublishTaskRecord) -> str:
        url = reverse("admin:taskcenter_task_change", args=[obj.task_id])
        return format_html('<a href="{}">#{}</a>', url, obj.task_id)

    @admin.display(description=_("error"))
    def error(self, obj: PublishTaskRecord) -> str:
        return obj.error_msg

    @admin.display(description=_("remote id"))
    def remote(self, obj: PublishTaskRecord) -> str:
        return obj.remote_id


@admin.register(VideoFile)
class VideoFileAdmin(admin.ModelAdmin):
    list_display = ["id", "filename", "size", "content_type", "owner", "created_at"]
    list_filter = ["content_type", "created_at"]
    search_fields = ["filename", "stored_name", "sha256", "owner__username"]
    readonly_fields = ["owner", "stored_name", "size", "content_type", "sha256", "created_at"]
    fields = ["filename", *readonly_fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # uploads are checked and stored by /upload


@admin.register(PlatformAccount)
class PlatformAccountAdmin(admin.ModelAdmin):
    list_display = ["id", "account_name", "name", "platform_type", "login_status", "owner"]
    list_filter = ["platform_type", "login_status"]
    search_fields = ["account_name", "name", "owner__username"]
    # Credentials are never shown or edited here: they come from the owner through the API, or
    # from the platform through a QR-code login (the page this admin links to).
    exclude = ["credentials"]
    readonly_fields = ["login_checked_at", "created_at", "has_credentials"]
    actions = [admin_login.log_in_again]
    change_list_template = "admin/publishing/platformaccount/change_list.html"

    def get_urls(self):
        extra = [
            path(
                "qr-login/",
                self.admin_site.admin_view(partial(admin_login.qr_login_view, self)),
                name="publishing_platformaccount_qr_login",
            ),
            path(
                "qr-login/stream/",
                self.admin_site.admin_view(partial(admin_login.qr_login_stream_view, self)),
                name="publishing_platformaccount_qr_login_stream",
            ),
        ]
        return extra + super().get_urls()

    @admin.display(description=_("has credentials"), boolean=True)
    def has_credentials(self, obj: PlatformAccount) -> bool:
        return bool(obj.credentials)
