"""The failure triage page: failures grouped by error shape, and one repair per group.

Reading needs the view permission on tasks; retry all and cancel all need the change permission
(as the task list's bulk actions do). An action is two steps: a GET shows how many tasks it
will change and changes nothing, the POST from that page applies the lifecycle transition to
each task of the group (``retry_task`` or ``cancel_task``, as the admin actions and the
``retry_tasks``/``cancel_tasks`` commands do) and says how many changed.
"""

from __future__ import annotations

from collections import Counter
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from taskcenter import lifecycle
from taskcenter.admin.failure_groups import (
    DEFAULT_WINDOW,
    SCAN_LIMIT,
    WINDOWS,
    FailureGroup,
    group_failures,
)
from taskcenter.errors import InvalidTransition
from taskcenter.models import Task

ACTIONS = {"retry": lifecycle.retry_task, "cancel": lifecycle.cancel_task}


def _window(request: HttpRequest) -> str:
    window = request.GET.get("window") or request.POST.get("window") or DEFAULT_WINDOW
    return window if window in WINDOWS else DEFAULT_WINDOW


def _page_url(window: str) -> str:
    return f"{reverse('admin:taskcenter_task_triage')}?{urlencode({'window': window})}"


def _window_labels() -> dict[str, str]:
    return {
        "24h": gettext("last 24 hours"),
        "7d": gettext("last 7 days"),
        "30d": gettext("last 30 days"),
    }


def triage(model_admin, request: HttpRequest) -> HttpResponse:
    """Failed and still-retrying tasks grouped by normalised error message."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    window = _window(request)
    result = group_failures(since=timezone.now() - WINDOWS[window])
    context = {
        **model_admin.admin_site.each_context(request),
        "title": gettext("Failure triage"),
        "triage": result,
        "window": window,
        "windows": list(_window_labels().items()),
        "window_label": _window_labels()[window],
        "scan_limit": SCAN_LIMIT,
        "can_change": model_admin.has_change_permission(request),
        "opts": Task._meta,
    }
    return TemplateResponse(request, "admin/taskcenter/triage.html", context)


def _find_group(fingerprint: str, window: str) -> FailureGroup:
    found = group_failures(
        since=timezone.now() - WINDOWS[window], fingerprint_only=fingerprint
    ).groups
    if not found:
        raise Http404(gettext("No failures with this fingerprint in the window."))
    return found[0]


def triage_action(model_admin, request: HttpRequest, fingerprint: str, action: str) -> HttpResponse:
    """GET: the confirmation, with how many tasks the action will change (a dry run).
    POST: the action itself, then back to the triage page with what it did."""
    if not model_admin.has_change_permission(request):
        raise PermissionDenied
    if action not in ACTIONS:
        raise Http404(gettext("Unknown action."))
    window = _window(request)
    group = _find_group(fingerprint, window)
    task_ids = group.ids_for(action)
    if request.method != "POST":
        context = {
            **model_admin.admin_site.each_context(request),
            "title": gettext("Retry all?") if action == "retry" else gettext("Cancel all?"),
            "group": group,
            "action": action,
            "count": len(task_ids),
            "window": window,
            "window_label": _window_labels()[window],
            "opts": Task._meta,
        }
        return TemplateResponse(request, "admin/taskcenter/triage_confirm.html", context)
    changed, refused = _apply(ACTIONS[action], task_ids, request)
    done = (
        ngettext("Retried %(count)d task.", "Retried %(count)d tasks.", changed)
        if action == "retry"
        else ngettext("Cancelled %(count)d task.", "Cancelled %(count)d tasks.", changed)
    )
    model_admin.message_user(request, done % {"count": changed}, messages.SUCCESS)
    if refused:
        detail = ", ".join(f"{n} {status}" for status, n in sorted(refused.items()))
        model_admin.message_user(
            request,
            gettext("%(count)d task(s) had moved on and were left as they are: %(detail)s.")
            % {"count": sum(refused.values()), "detail": detail},
            messages.WARNING,
        )
    return HttpResponseRedirect(_page_url(window))


def _apply(transition, task_ids: list[int], request: HttpRequest) -> tuple[int, Counter[str]]:
    changed, refused = 0, Counter[str]()
    for task_id in task_ids:
        try:
            transition(task_id, actor=request.user)
        except InvalidTransition as exc:  # moved on since the page was read, or no quota
            refused[exc.current_status or gettext("deleted")] += 1
        else:
            changed += 1
    return changed, refused
