"""Workers and queues in the operators' console.

The Workers page lists the registry (``execution.worker_registry``): every worker process, alive,
dead (a red badge: it stopped beating and never said goodbye) or stopped, with what it runs now
and the attempts the reaper recovered from it, linked to the task list filtered to them. The
Queues page shows how many tasks wait, by kind, platform and account, and for what: a worker,
a remote platform (poll-again) or a busy account (``execution.queues``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from taskcenter.admin.base import ReadOnlyModelAdmin
from taskcenter.execution import queues, worker_registry
from taskcenter.models import WaitingFor, WorkerProcess, WorkerState

STATE_COLOURS = {
    WorkerState.ALIVE: "#198754",
    WorkerState.DEAD: "#dc3545",
    WorkerState.STOPPED: "#6c757d",
}
WAITING_FOR_LABELS = {
    queues.WORKER: _("a worker"),
    WaitingFor.PLATFORM.value: _("a remote platform (poll again)"),
    WaitingFor.ACCOUNT.value: _("a busy account"),
}
LISTED_ATTEMPTS = 10


class WorkerStateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return WorkerState.choices

    def queryset(self, request, queryset):
        silent = worker_registry.silent_since()
        if self.value() == WorkerState.ALIVE:
            return queryset.alive(silent_since=silent)
        if self.value() == WorkerState.DEAD:
            return queryset.dead(silent_since=silent)
        if self.value() == WorkerState.STOPPED:
            return queryset.stopped()
        return queryset


class LostOnWorkerFilter(admin.SimpleListFilter):
    """``?lost_on_worker=<worker id>``: the tasks (or executions) a worker lost.

    Offered only when a link from the Workers page sets it: a list of every worker ever seen
    would be no use as a sidebar filter.
    """

    title = _("lost on worker")
    parameter_name = "lost_on_worker"
    # The field of the filtered model that holds a LOST execution's id or its task's id.
    field = "pk"
    execution_field = "pk"

    def _worker(self) -> WorkerProcess | None:
        value = self.value()
        if not value:
            return None
        try:
            return WorkerProcess.objects.filter(pk=uuid.UUID(value)).first()
        except ValueError:  # not a uuid: no such worker
            return None

    def lookups(self, request, model_admin):
        worker = self._worker()
        return [(str(worker.pk), worker.name)] if worker else []

    def queryset(self, request, queryset):
        worker = self._worker()
        if worker is None:
            return queryset
        lost = worker_registry.lost_attempts(worker).values(self.execution_field)
        return queryset.filter(**{f"{self.field}__in": lost})


class TasksLostOnWorkerFilter(LostOnWorkerFilter):
    execution_field = "task_id"


@admin.register(WorkerProcess)
class WorkerProcessAdmin(ReadOnlyModelAdmin):
    list_display = [
        "name",
        "state_badge",
        "host",
        "pid",
        "engine",
        "queue_names",
        "slots",
        "running",
        "attempts_run",
        "attempts_deferred",
        "lost",
        "version",
        "started_at",
        "last_seen_at",
        "stopped_at",
    ]
    list_filter = [WorkerStateFilter, "engine", "host"]
    search_fields = ["name", "host", "=pid"]
    ordering = ["-started_at"]
    list_per_page = 50

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        # One "now" per page, so a row's state and the filter agree.
        self._silent_since = worker_registry.silent_since()
        return super().changelist_view(request, extra_context)

    def _silent(self) -> datetime:
        return getattr(self, "_silent_since", None) or worker_registry.silent_since()

    @admin.display(description=_("state"))
    def state_badge(self, obj: WorkerProcess) -> str:
        state = WorkerState(obj.state(silent_since=self._silent()))
        return format_html(
            '<span class="tc-worker-{}" style="background:{};color:#fff;padding:2px 8px;'
            'border-radius:10px;font-size:11px;font-weight:600">{}</span>',
            state.value,
            STATE_COLOURS[state],
            state.label,
        )

    @admin.display(description=_("queues"))
    def queue_names(self, obj: WorkerProcess) -> str:
        return ", ".join(obj.queues or [])

    @admin.display(description=_("busy slots"))
    def slots(self, obj: WorkerProcess) -> str:
        return f"{obj.busy}/{obj.concurrency}"

    @admin.display(description=_("running attempts"))
    def running(self, obj: WorkerProcess) -> str:
        ids = list(obj.running_attempts or [])
        if not ids:
            return "-"
        links = format_html_join(
            ", ",
            '<a href="{}">#{}</a>',
            (
                (reverse("admin:taskcenter_taskexecution_change", args=[pk]), pk)
                for pk in ids[:LISTED_ATTEMPTS]
            ),
        )
        more = len(ids) - LISTED_ATTEMPTS
        return format_html("{} (+{})", links, more) if more > 0 else links

    @admin.display(description=_("lost attempts"))
    def lost(self, obj: WorkerProcess) -> str:
        count = worker_registry.lost_attempts(obj).count()
        if not count:
            return "0"
        return format_html(
            '<a href="{}?lost_on_worker={}">{}</a>',
            reverse("admin:taskcenter_task_changelist"),
            obj.pk,
            count,
        )

    def get_urls(self):
        extra = [
            path(
                "queues/",
                self.admin_site.admin_view(lambda request: queues_page(self, request)),
                name="taskcenter_queues",
            ),
        ]
        return extra + super().get_urls()


def queues_page(model_admin: WorkerProcessAdmin, request: HttpRequest) -> HttpResponse:
    """Queue depth now (needs the view permission on workers)."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    rows = queues.depth_rows()
    totals = queues.waiting_totals(rows)
    silent = worker_registry.silent_since()
    workers = WorkerProcess.objects
    context: dict[str, Any] = {
        **model_admin.admin_site.each_context(request),
        "title": gettext("Queues"),
        "opts": WorkerProcess._meta,
        "rows": [
            {**row, "waiting_for_label": WAITING_FOR_LABELS.get(row["waiting_for"], "")}
            for row in rows
        ],
        "totals": [
            (key, WAITING_FOR_LABELS[key], totals.get(key, 0)) for key in WAITING_FOR_LABELS
        ],
        "oldest_queued_age": queues.oldest_queued_age(),
        "workers_alive": workers.alive(silent_since=silent).count(),
        "workers_dead": workers.dead(silent_since=silent).count(),
        "lost_total": worker_registry.lost_attempts_total(),
    }
    return TemplateResponse(request, "admin/taskcenter/queues.html", context)
