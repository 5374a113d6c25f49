"""The operators' console: watch tasks, read their history, and repair them in bulk.

Every action goes through ``taskcenter.lifecycle``; status and history are never edited here.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.utils import unquote
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse, reverse_lazy
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from taskcenter import lifecycle
from taskcenter.admin import charts, registry, triage
from taskcenter.admin import dashboard as admin_views
from taskcenter.admin.badges import progress_bar as draw_progress_bar
from taskcenter.admin.badges import status_badge
from taskcenter.admin.base import ReadOnlyModelAdmin
from taskcenter.admin.live import live_updates
from taskcenter.admin.workers import LostOnWorkerFilter, TasksLostOnWorkerFilter
from taskcenter.errors import InvalidTransition
from taskcenter.kinds import account_holds
from taskcenter.models import AccountHold, ExecutionStatus, Task, TaskEvent, TaskExecution

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

admin.site.site_header = _("Task Center")
admin.site.site_title = _("Task Center")
admin.site.index_title = _("Operations")
# "View site": the service has no home page of its own; its human-facing page is the API docs.
# Django renders site_url in a template, so a lazy URL works; the stubs ask for a str.
admin.site.site_url = reverse_lazy("swagger-ui")  # type: ignore[assignment]


def pretty_json(value: object) -> str:
    return format_html(
        '<pre style="white-space:pre-wrap;margin:0;max-height:30em;overflow:auto">{}</pre>',
        json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True),
    )


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class TaskExecutionInline(ReadOnlyInline):
    model = TaskExecution
    fields = ("attempt", "badge", "worker_id", "started_at", "duration", "result_count", "error")
    readonly_fields = fields
    ordering = ["-attempt"]

    @admin.display(description=_("status"))
    def badge(self, obj: TaskExecution) -> str:
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description=_("error"))
    def error(self, obj: TaskExecution) -> str:
        return obj.error_message[:200]


class TaskEventInline(ReadOnlyInline):
    model = TaskEvent
    fields = ("at", "verb", "from_status", "to_status", "actor", "data")
    readonly_fields = fields
    ordering = ["-at", "-id"]


def lifecycle_action(
    verb: str,
    transition: Callable[..., Task],
    description: StrOrPromise,
    *,
    task_field: str = "pk",
    noun: str = "task",
    status_label: Callable[[str], str] = str,
    permission: str = "change",
) -> Callable[[admin.ModelAdmin, HttpRequest, QuerySet], None]:
    """A bulk action that applies one lifecycle transition and reports what was refused.

    Other apps' admins reuse it for rows that point at a task (``task_field="task_id"``), with
    their own noun and status words. Django offers (and runs) it only to users for whom the
    model admin's ``has_<permission>_permission(request)`` is true: change by default, since a
    transition changes the task.
    """

    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
        changed = 0
        refused: Counter[str] = Counter()
        for task_id in queryset.values_list(task_field, flat=True).iterator():
            try:
                transition(task_id, actor=request.user)
            except InvalidTransition as exc:
                gone = gettext("deleted")
                refused[status_label(exc.current_status) if exc.current_status else gone] += 1
            else:
                changed += 1
        # The verb and the noun are msgids of the catalogues too (the event verbs, the models'
        # names), so they are looked up in the operator's language here.
        words = {"verb": gettext(verb), "noun": gettext(noun)}
        modeladmin.message_user(
            request,
            gettext("%(verb)s: %(count)d %(noun)s(s).")
            % {**words, "verb": words["verb"].capitalize(), "count": changed},
            messages.SUCCESS,
        )
        if refused:
            detail = ", ".join(f"{count} {status}" for status, count in sorted(refused.items()))
            modeladmin.message_user(
                request,
                gettext(
                    "Refused for %(count)d %(noun)s(s) in a status that cannot be %(verb)s: "
                    "%(detail)s."
                )
                % {**words, "count": sum(refused.values()), "detail": detail},
                messages.WARNING,
            )

    action.__name__ = f"{verb}_selected"
    return admin.action(description=description, permissions=[permission])(action)


BUSY_SHOWN = 10  # queued or running tasks named in a refused bulk delete


def _staff_user(request: HttpRequest) -> AbstractBaseUser:
    """The user of an admin request: ``admin_view`` lets in only logged-in staff."""
    return cast(AbstractBaseUser, request.user)


def history_names(site: admin.AdminSite) -> set[str]:
    """Verbose names of the models whose admin is read-only history (``ReadOnlyModelAdmin``)."""
    return {
        str(model._meta.verbose_name)
        for model in apps.get_models()
        if site.is_registered(model) and isinstance(site.get_model_admin(model), ReadOnlyModelAdmin)
    }


@admin.action(permissions=["delete"], description=_("Delete selected %(verbose_name_plural)s"))
def delete_selected(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Task]
) -> HttpResponse | None:
    """Django's bulk delete, refused whole (before its confirmation page) when a selected task
    is queued or running: a worker may be touching it, so it must be cancelled first."""
    busy = list(
        queryset.exclude(status__in=lifecycle.DELETABLE).values_list("pk", "status")[:BUSY_SHOWN]
    )
    if busy:
        listed = ", ".join(f"#{pk} {status}" for pk, status in busy)
        modeladmin.message_user(
            request,
            gettext(
                "Nothing deleted: selected tasks are queued or running (%(listed)s). "
                "Cancel them first, then delete."
            )
            % {"listed": listed},
            messages.ERROR,
        )
        return None
    return django_delete_selected(modeladmin, request, queryset)


REFERENCE_FIELDS = (
    "platform",
    "action",
    "external_id",
    "remote_status",
    "account_id",
    "proxy_id",
    "batch_id",
    "quota",
    "quota_refunded_at",
)
TIME_FIELDS = ("created_at", "submitted_at", "started_at", "finished_at", "updated_at")


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "title",
        "task_type",
        "badge",
        "progress_bar",
        "platform",
        "owner",
        "attempts_display",
        "lost_attempts",
        "created_at",
        "finished_at",
    ]
    list_display_links = ["id", "title"]
    list_filter = [
        "status",
        "task_type",
        "platform",
        "owner",
        "created_at",
        "finished_at",
        TasksLostOnWorkerFilter,  # shown only when the Workers page links here
    ]
    search_fields = ["=id", "name", "external_id", "batch_id", "account_id", "owner__username"]
    list_select_related = ["owner"]
    list_per_page = 50
    show_full_result_count = False  # a COUNT(*) over millions of rows on every page is too slow
    paginator = admin_views.CappedCountPaginator
    date_hierarchy = "created_at"
    inlines = [TaskExecutionInline, TaskEventInline]
    actions = [
        delete_selected,  # same name: replaces the site-wide action for tasks
        lifecycle_action("started", lifecycle.start_task, _("Start selected tasks")),
        lifecycle_action("stopped", lifecycle.stop_task, _("Stop selected tasks")),
        lifecycle_action("cancelled", lifecycle.cancel_task, _("Cancel selected tasks")),
        lifecycle_action("retried", lifecycle.retry_task, _("Retry selected tasks")),
    ]
    fieldsets = [
        (None, {"fields": ["name", "description", "task_type", "owner", "badge", "progress_bar"]}),
        (
            _("Run"),
            {
                "fields": [
                    "priority",
                    "attempts_display",
                    "lost_attempts",
                    "run_after",
                    "error_message",
                ]
            },
        ),
        (_("Parameters and result"), {"fields": ["parameters_pretty", "result_pretty"]}),
        (
            _("References"),
            {
                "classes": ["collapse"],
                "fields": REFERENCE_FIELDS,
            },
        ),
        (
            _("Times"),
            {"fields": TIME_FIELDS},
        ),
    ]
    readonly_fields = [
        "task_type",
        "owner",
        "badge",
        "progress_bar",
        "attempts_display",
        "lost_attempts",
        "run_after",
        "error_message",
        "parameters_pretty",
        "result_pretty",
        *REFERENCE_FIELDS,
        *TIME_FIELDS,
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Tasks are created through the API or lifecycle.create_task, which validate parameters.
        return False

    def save_model(self, request, obj, form, change):
        # A plain save() writes every column, and would put back the status this page loaded
        # if a worker moved the task meanwhile. Only the fields edited here are written.
        if change:
            if form.changed_data:
                obj.save(update_fields=[*form.changed_data, "updated_at"])
        else:
            super().save_model(request, obj, form, change)

    # --- deleting: through lifecycle.delete_task, which refuses queued and running tasks ---

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        # The history admins (executions, results) refuse deletes so that nobody erases one
        # line of a task's record; the record goes with its task, and only with it, on the
        # task's own delete permission. Other related rows keep Django's check.
        history = history_names(self.admin_site)
        return deleted, counts, {n for n in perms_needed if str(n) not in history}, protected

    def delete_view(self, request, object_id, extra_context=None):
        task = self.get_object(request, unquote(object_id))
        if (
            task is not None
            and task.status not in lifecycle.DELETABLE
            and self.has_delete_permission(request, task)
        ):
            return self._busy(request, task.pk, task.status)
        try:
            return super().delete_view(request, object_id, extra_context)
        except InvalidTransition as exc:  # started (or deleted) since the page was read
            return self._busy(request, exc.task_id, exc.current_status)

    def _busy(self, request: HttpRequest, task_id: int, status: str | None) -> HttpResponse:
        if status is None:
            self.message_user(
                request,
                gettext("Task #%(id)s no longer exists.") % {"id": task_id},
                messages.WARNING,
            )
            return HttpResponseRedirect(reverse("admin:taskcenter_task_changelist"))
        self.message_user(
            request,
            gettext("Task #%(id)s is %(status)s: cancel it first, then delete it.")
            % {"id": task_id, "status": status},
            messages.ERROR,
        )
        return HttpResponseRedirect(reverse("admin:taskcenter_task_change", args=[task_id]))

    def delete_model(self, request: HttpRequest, obj: Task) -> None:
        lifecycle.delete_task(obj.pk, actor=_staff_user(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        refused = []
        for task_id in list(queryset.values_list("pk", flat=True)):
            try:
                lifecycle.delete_task(task_id, actor=_staff_user(request))
            except InvalidTransition as exc:  # started since the confirmation page was read
                status = exc.current_status or gettext("gone")
                refused.append(f"#{exc.task_id} {status}")
        if refused:
            self.message_user(
                request,
                gettext(
                    "Not deleted, queued or running since you confirmed: %(listed)s. "
                    "Cancel them first."
                )
                % {"listed": ", ".join(refused)},
                messages.WARNING,
            )

    def get_urls(self):
        extra = [
            path(
                "dashboard/",
                self.admin_site.admin_view(lambda request: admin_views.dashboard(self, request)),
                name="taskcenter_task_dashboard",
            ),
            path(
                "charts/",
                self.admin_site.admin_view(lambda request: charts.charts(self, request)),
                name="taskcenter_task_charts",
            ),
            path(
                "triage/",
                self.admin_site.admin_view(lambda request: triage.triage(self, request)),
                name="taskcenter_task_triage",
            ),
            path(
                "triage/<str:fingerprint>/<str:action>/",
                self.admin_site.admin_view(
                    lambda request, fingerprint, action: triage.triage_action(
                        self, request, fingerprint, action
                    )
                ),
                name="taskcenter_task_triage_action",
            ),
            path(
                "<int:task_id>/action/<str:action>/",
                self.admin_site.admin_view(
                    lambda request, task_id, action: admin_views.run_task_action(
                        self, request, task_id, action
                    )
                ),
                name="taskcenter_task_action",
            ),
        ]
        return extra + super().get_urls()

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        if self.has_view_permission(request):
            for extra in registry.task_actions():
                if extra.allowed(self.admin_site, request):
                    actions[extra.name] = (extra.function, extra.name, extra.description)
        return actions

    def changelist_view(self, request, extra_context=None):
        # The page's badges and progress bars follow the tasks' events (static/taskcenter/live.js).
        return super().changelist_view(
            request, {**(extra_context or {}), "live_updates": live_updates()}
        )

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        allowed = obj is not None and self.has_change_permission(request, obj)
        context["legal_actions"] = admin_views.legal_actions(obj) if allowed else []
        context["action_buttons"] = admin_views.action_buttons(context["legal_actions"])
        # A queued or running task cannot be deleted (cancel it first): no Delete link.
        context["show_delete"] = obj is None or obj.status in lifecycle.DELETABLE
        if obj is not None:
            context["live_updates"] = live_updates(task_id=obj.pk)
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description=_("task"), ordering="name")
    def title(self, obj: Task) -> str:
        return obj.name or f"{obj.task_type} #{obj.pk}"

    @admin.display(description=_("status"), ordering="status")
    def badge(self, obj: Task) -> str:
        return status_badge(obj.status, obj.get_status_display(), task_id=obj.pk)

    @admin.display(description=_("progress"), ordering="progress")
    def progress_bar(self, obj: Task) -> str:
        return draw_progress_bar(obj)

    @admin.display(description=_("attempts"))
    def attempts_display(self, obj: Task) -> str:
        return f"{obj.attempts}/{obj.max_attempts}"

    @admin.display(description=_("parameters"))
    def parameters_pretty(self, obj: Task) -> str:
        return pretty_json(obj.parameters)

    @admin.display(description=_("result"))
    def result_pretty(self, obj: Task) -> str:
        return pretty_json(obj.result)


class FailedOrLostFilter(admin.SimpleListFilter):
    title = _("outcome")
    parameter_name = "outcome"

    def lookups(self, request, model_admin):
        return [("failed_or_lost", _("Failed or lost"))]

    def queryset(self, request, queryset):
        if self.value() == "failed_or_lost":
            return queryset.filter(status__in=[ExecutionStatus.FAILED, ExecutionStatus.LOST])
        return queryset


@admin.register(TaskExecution)
class TaskExecutionAdmin(ReadOnlyModelAdmin):
    list_display = [
        "id",
        "task",
        "attempt",
        "badge",
        "worker_id",
        "started_at",
        "duration",
        "result_count",
        "short_error",
    ]
    list_filter = [FailedOrLostFilter, "status", "started_at", LostOnWorkerFilter]
    search_fields = ["=task__id", "worker_id", "error_message"]
    list_select_related = ["task"]
    show_full_result_count = False
    paginator = admin_views.CappedCountPaginator
    date_hierarchy = "started_at"

    @admin.display(description=_("status"), ordering="status")
    def badge(self, obj: TaskExecution) -> str:
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description=_("error"))
    def short_error(self, obj: TaskExecution) -> str:
        return obj.error_message[:120]


@admin.register(AccountHold)
class AccountHoldAdmin(ReadOnlyModelAdmin):
    """Which task uses each platform account now; read-only (holds lapse with their attempt)."""

    list_display = ["account", "owner", "holder_task", "state", "held_since", "cooldown"]
    list_filter = ["platform"]
    search_fields = ["account_id", "=execution__task__id", "owner__username"]
    list_select_related = ["execution", "owner"]
    show_full_result_count = False
    paginator = admin_views.CappedCountPaginator

    @admin.display(description=_("account"), ordering="account_id")
    def account(self, obj: AccountHold) -> str:
        return str(obj)

    @admin.display(description=_("last holder"))
    def holder_task(self, obj: AccountHold) -> str:
        if obj.execution is None:
            return "-"
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:taskcenter_task_change", args=[obj.execution.task_id]),
            gettext("task #%(id)s") % {"id": obj.execution.task_id},
        )

    @admin.display(description=_("state"))
    def state(self, obj: AccountHold) -> str:
        return account_holds.account_state(obj)
