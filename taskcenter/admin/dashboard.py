"""Admin pages beyond Django's CRUD: the operator dashboard and the per-task action buttons."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from taskcenter import lifecycle
from taskcenter.admin.charts import throughput_per_minute
from taskcenter.admin.live import live_updates
from taskcenter.errors import InvalidTransition
from taskcenter.models import ExecutionStatus, Status, Task, TaskExecution

# The transition behind each button, and the statuses it is offered in (lifecycle's own rules).
TASK_ACTIONS: dict[str, tuple[Callable[..., Task], tuple[str, ...]]] = {
    "start": (lifecycle.start_task, lifecycle.STARTABLE),
    "stop": (lifecycle.stop_task, lifecycle.STOPPABLE),
    "cancel": (lifecycle.cancel_task, lifecycle.CANCELLABLE),
    "retry": (lifecycle.retry_task, lifecycle.RETRYABLE),
}


# The buttons' words, in the operator's language.
ACTION_LABELS = {
    "start": _("Start"),
    "stop": _("Stop"),
    "cancel": _("Cancel"),
    "retry": _("Retry"),
}


def legal_actions(task: Task) -> list[str]:
    return [name for name, (_fn, allowed) in TASK_ACTIONS.items() if task.status in allowed]


def action_buttons(names: list[str]) -> list[tuple[str, str]]:
    """(action, label) for the task page's buttons."""
    return [(name, str(ACTION_LABELS[name])) for name in names]


class CappedCountPaginator(Paginator):
    """Counts at most ``CAP + 1`` rows, so a page of a million-row table costs no full COUNT."""

    CAP = 10_000
    object_list: QuerySet[Any]  # the admin's changelists page querysets

    @cached_property
    def count(self) -> int:
        return self.object_list[: self.CAP + 1].count()


def run_task_action(model_admin, request: HttpRequest, task_id: int, action: str) -> HttpResponse:
    """POST-only: apply one lifecycle transition from the task page's buttons.

    Needs the change permission, as saving the task's form does: ``admin_view`` only checks
    that the user is active staff.
    """
    if not model_admin.has_change_permission(request):
        raise PermissionDenied
    change_url = reverse("admin:taskcenter_task_change", args=[task_id])
    if request.method != "POST" or action not in TASK_ACTIONS:
        return HttpResponseRedirect(change_url)
    task = get_object_or_404(Task, pk=task_id)
    if not model_admin.has_change_permission(request, task):
        raise PermissionDenied
    transition, _ = TASK_ACTIONS[action]
    try:
        transition(task.pk, actor=request.user)
    except InvalidTransition as exc:
        model_admin.message_user(
            request,
            gettext("Could not %(action)s the task: it is %(status)s.")
            % {"action": str(ACTION_LABELS[action]).lower(), "status": exc.current_status},
            messages.ERROR,
        )
    else:
        model_admin.message_user(
            request,
            gettext("Task #%(id)s: %(action)s done.")
            % {"id": task.pk, "action": str(ACTION_LABELS[action]).lower()},
            messages.SUCCESS,
        )
    return HttpResponseRedirect(change_url)


def dashboard(model_admin, request: HttpRequest) -> HttpResponse:
    """Counts by status now, and how the last 24 hours went (needs the view permission)."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    now = timezone.now()
    since = now - timedelta(hours=24)
    by_status = dict(
        Task.objects.order_by()
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    last_day = Task.objects.filter(finished_at__gte=since).aggregate(
        finished=Count("id"),
        completed=Count("id", filter=Q(status=Status.COMPLETED)),
        failed=Count("id", filter=Q(status=Status.FAILED)),
        cancelled=Count("id", filter=Q(status=Status.CANCELLED)),
    )
    decided = last_day["completed"] + last_day["failed"]
    failure_rate = 100 * last_day["failed"] / decided if decided else None
    oldest_queued = (
        Task.objects.filter(status=Status.QUEUED)
        .order_by("updated_at")
        .values_list("updated_at", flat=True)
        .first()
    )
    lost_last_day = TaskExecution.objects.filter(
        status=ExecutionStatus.LOST, completed_at__gte=since
    ).count()
    recent_failures = (
        Task.objects.filter(status=Status.FAILED, finished_at__gte=since)
        .select_related("owner")
        .order_by("-finished_at")[:10]
    )
    context = {
        **model_admin.admin_site.each_context(request),
        # The counts are fetched again as the tasks' events arrive (static/taskcenter/live.js).
        "live_updates": live_updates(refresh=True),
        "title": gettext("Task Center dashboard"),
        "status_rows": [
            (status, label, by_status.get(status, 0)) for status, label in Status.choices
        ],
        "total": sum(by_status.values()),
        "last_day": last_day,
        "failure_rate": failure_rate,
        "oldest_queued_age": now - oldest_queued if oldest_queued else None,
        "lost_last_day": lost_last_day,
        "recent_failures": recent_failures,
        "throughput_chart": throughput_per_minute(now),
        "opts": Task._meta,
    }
    return TemplateResponse(request, "admin/taskcenter/dashboard.html", context)
