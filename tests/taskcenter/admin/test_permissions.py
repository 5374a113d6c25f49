"""Every admin page and action beyond Django's CRUD asks for the model permission it needs, as
Django's own changelist does: view for pages, change for what moves a task. A staff user
without it gets a 403 (or, for a bulk action, no action) and the database stays as it was.

The URL cases are checked against the admin's URL resolver: a new custom admin URL without a
case here fails ``test_every_custom_admin_url_has_a_permission_case``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core import signing
from django.test import Client
from django.urls import URLPattern, URLResolver, reverse

from publishing import admin_login
from publishing.models import PlatformAccount, PublishTaskRecord
from scraping.models import ScrapeResult
from taskcenter.admin import registry
from taskcenter.lib.error_fingerprints import fingerprint
from taskcenter.models import Status, Task, TaskEvent
from tests.support.lifecycle import task_in

User = get_user_model()


def grant(user, *perms: str) -> None:
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )


@pytest.fixture
def login(client: Client, db) -> Callable[..., Client]:
    """Log in a fresh staff user holding exactly ``perms`` (or a superuser)."""

    def log_in(*perms: str, superuser: bool = False) -> Client:
        user = User.objects.create_user(
            f"staff{User.objects.count()}",
            password="staff-pass-123",
            is_staff=True,
            is_superuser=superuser,
        )
        grant(user, *perms)
        client.force_login(user)
        return client

    return log_in


def task_state() -> dict[str, Any]:
    return {
        "tasks": list(Task.objects.order_by("pk").values_list("pk", "status", "updated_at")),
        "events": TaskEvent.objects.count(),
        "results": ScrapeResult.objects.count(),
    }


def database_state() -> dict[str, Any]:
    """What any admin page or action here could change."""
    return {
        **task_state(),
        "passwords": list(User.objects.order_by("pk").values_list("pk", "password")),
    }


# --- custom admin URLs ---------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    url: str
    data: dict[str, str] | None  # None: GET
    changed: Callable[[], bool] | None = None  # None: a page, which changes nothing


@dataclass(frozen=True)
class UrlCase:
    id: str
    url_name: str
    permission: str  # what a staff user needs, "app_label.codename"
    lesser: tuple[str, ...]  # permissions that must not be enough
    ok_status: int
    target: Callable[[Any], Target]  # from the make_task fixture

    def __str__(self) -> str:
        return self.id


def _task_action(action: str, status: str, then: str) -> Callable[[Any], Target]:
    def target(make_task) -> Target:
        task = task_in(status, make_task)
        url = reverse("admin:taskcenter_task_action", args=[task.pk, action])
        return Target(url, {}, lambda: Task.objects.get(pk=task.pk).status == then)

    return target


def _dashboard(make_task) -> Target:
    task_in(Status.FAILED, make_task)
    return Target(reverse("admin:taskcenter_task_dashboard"), None)


def _queues(make_task) -> Target:
    make_task(start=True)
    return Target(reverse("admin:taskcenter_queues"), None)


def _charts(make_task) -> Target:
    return Target(reverse("admin:taskcenter_task_charts"), None)


def _triage(make_task) -> Target:
    task_in(Status.FAILED, make_task)
    return Target(reverse("admin:taskcenter_task_triage"), None)


def _triage_retry(make_task) -> Target:
    task = task_in(Status.FAILED, make_task)  # failed with "boom"
    url = reverse("admin:taskcenter_task_triage_action", args=[fingerprint("boom"), "retry"])
    return Target(url, {}, lambda: Task.objects.get(pk=task.pk).status == Status.QUEUED)


def _batch_page(make_task) -> Target:
    task = make_task()
    account = PlatformAccount.objects.create(
        owner=task.owner, platform_type=3, account_name="shop-main"
    )
    PublishTaskRecord.objects.create(
        task=task,
        batch_id="batch-1",
        filename="clip.mp4",
        account=account,
        account_name="shop-main",
        platform_name="douyin",
        platform_type=3,
    )
    return Target(reverse("admin:publishing_publishtaskrecord_batch", args=["batch-1"]), None)


def _qr_login_page(make_task) -> Target:
    return Target(reverse("admin:publishing_platformaccount_qr_login"), None)


def _qr_login_stream(make_task) -> Target:
    """A stream for a new account (so adding is the right it needs); the test client does not
    read it, so no login starts."""
    ticket = signing.dumps(
        {"owner": make_task().owner_id, "type": 3, "name": "new-account"},
        salt=admin_login.TICKET_SALT,
    )
    url = reverse("admin:publishing_platformaccount_qr_login_stream")
    return Target(f"{url}?{urlencode({'t': ticket})}", None)


def _password_page(make_task) -> Target:
    """Django's own extra URL on the user admin, held to the same rule."""
    victim = User.objects.create_user("victim", password="victim-pass-123")
    url = reverse("admin:auth_user_password_change", args=[victim.pk])
    data = {"password1": "new-pass-9182x", "password2": "new-pass-9182x"}
    return Target(
        url, data, lambda: User.objects.get(pk=victim.pk).check_password(data["password1"])
    )


URL_CASES = [
    UrlCase("dashboard", "taskcenter_task_dashboard", "taskcenter.view_task", (), 200, _dashboard),
    UrlCase("queues", "taskcenter_queues", "taskcenter.view_workerprocess", (), 200, _queues),
    UrlCase("charts", "taskcenter_task_charts", "taskcenter.view_task", (), 200, _charts),
    UrlCase("triage", "taskcenter_task_triage", "taskcenter.view_task", (), 200, _triage),
    UrlCase(
        "triage-retry-all",
        "taskcenter_task_triage_action",
        "taskcenter.change_task",
        ("taskcenter.view_task",),
        302,
        _triage_retry,
    ),
    *(
        UrlCase(
            f"task-{action}",
            "taskcenter_task_action",
            "taskcenter.change_task",
            ("taskcenter.view_task",),
            302,
            _task_action(action, status, then),
        )
        for action, status, then in [
            ("start", Status.PENDING, Status.QUEUED),
            ("stop", Status.QUEUED, Status.STOPPED),
            ("cancel", Status.PENDING, Status.CANCELLED),
            ("retry", Status.FAILED, Status.QUEUED),
        ]
    ),
    UrlCase(
        "publishing-batch",
        "publishing_publishtaskrecord_batch",
        "publishing.view_publishtaskrecord",
        ("taskcenter.view_task",),
        200,
        _batch_page,
    ),
    *(
        UrlCase(
            case_id,
            url_name,
            "publishing.add_platformaccount",
            ("publishing.view_platformaccount",),
            200,
            target,
        )
        for case_id, url_name, target in [
            ("account-qr-login", "publishing_platformaccount_qr_login", _qr_login_page),
            (
                "account-qr-login-stream",
                "publishing_platformaccount_qr_login_stream",
                _qr_login_stream,
            ),
        ]
    ),
    UrlCase(
        "user-password",
        "auth_user_password_change",
        "auth.change_user",
        ("auth.view_user",),
        302,
        _password_page,
    ),
]

SITE_URL_NAMES = {
    "index",
    "login",
    "logout",
    "password_change",
    "password_change_done",
    "autocomplete",
    "jsi18n",
    "view_on_site",
    "app_list",
}
MODEL_URL_SUFFIXES = ("changelist", "add", "history", "delete", "change")


def _admin_patterns(patterns, prefix: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _admin_patterns(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            assert isinstance(pattern, URLPattern)
            yield prefix + str(pattern.pattern), pattern.name


def custom_admin_urls() -> dict[str, str]:
    """Name -> route of every admin URL that is not one of Django's standard views."""
    standard = set(SITE_URL_NAMES)
    for model in admin.site._registry:
        opts = model._meta
        standard.update(f"{opts.app_label}_{opts.model_name}_{s}" for s in MODEL_URL_SUFFIXES)
    urls: dict[str, str] = {}
    for route, name in _admin_patterns(admin.site.get_urls()):
        if name is None:
            # Django's unnamed ones: the old change URL's redirect, and the catch-all.
            assert route.endswith("<path:object_id>/") or route == "(?P<url>.*)$", (
                f"unnamed admin URL {route!r}: name it and add a case to URL_CASES"
            )
        elif name not in standard:
            urls[name] = route
    return urls


def test_every_custom_admin_url_has_a_permission_case():
    assert set(custom_admin_urls()) == {case.url_name for case in URL_CASES}


@pytest.mark.parametrize(
    ("case", "perms"),
    [(case, ()) for case in URL_CASES] + [(case, case.lesser) for case in URL_CASES if case.lesser],
    ids=lambda value: str(value) if isinstance(value, UrlCase) else ",".join(value) or "none",
)
def test_staff_without_the_permission_gets_403_and_nothing_changes(login, make_task, case, perms):
    target = case.target(make_task)
    client = login(*perms)
    before = database_state()

    if target.data is None:
        response = client.get(target.url)
    else:
        response = client.post(target.url, target.data)

    assert response.status_code == 403
    assert database_state() == before


@pytest.mark.parametrize("superuser", [False, True], ids=["with-permission", "superuser"])
@pytest.mark.parametrize("case", URL_CASES, ids=str)
def test_staff_with_the_permission_gets_the_page_or_the_change(login, make_task, case, superuser):
    target = case.target(make_task)
    client = login(superuser=True) if superuser else login(case.permission)

    if target.data is None:
        response = client.get(target.url)
    else:
        response = client.post(target.url, target.data)

    assert response.status_code == case.ok_status
    if target.changed is not None:
        assert target.changed()


def test_task_page_offers_action_buttons_only_to_those_who_may_change_it(login, make_task):
    task = make_task()
    url = reverse("admin:taskcenter_task_change", args=[task.pk])

    assert login("taskcenter.view_task").get(url).context["legal_actions"] == []
    assert login("taskcenter.change_task").get(url).context["legal_actions"] == [
        "start",
        "cancel",
    ]


# --- bulk actions --------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionCase:
    id: str
    model: type
    action: str
    permission: str  # what the action needs, beyond viewing the list
    target: Callable[[Any], tuple[int, Callable[[Any], bool]]]  # -> (row pk, done(response))

    def __str__(self) -> str:
        return self.id

    @property
    def changelist(self) -> str:
        return reverse(
            f"admin:{self.model._meta.app_label}_{self.model._meta.model_name}_changelist"
        )

    @property
    def view_permission(self) -> str:
        return f"{self.model._meta.app_label}.view_{self.model._meta.model_name}"


def _moves_task(status: str, then: str) -> Callable[[Any], tuple[int, Callable]]:
    def target(make_task):
        task = task_in(status, make_task)
        return task.pk, lambda response: Task.objects.get(pk=task.pk).status == then

    return target


def _moves_record(status: str, then: str) -> Callable[[Any], tuple[int, Callable]]:
    def target(make_task):
        task = task_in(status, make_task)
        record_pk = _batch_record(task).pk
        return record_pk, lambda response: Task.objects.get(pk=task.pk).status == then

    return target


def _batch_record(task: Task) -> PublishTaskRecord:
    account, _ = PlatformAccount.objects.get_or_create(
        owner=task.owner, platform_type=3, account_name="shop-main"
    )
    return PublishTaskRecord.objects.create(
        task=task,
        batch_id="batch-1",
        filename="clip.mp4",
        account=account,
        account_name="shop-main",
        platform_name="douyin",
        platform_type=3,
    )


def _exports(of_task: bool) -> Callable[[Any], tuple[int, Callable]]:
    def target(make_task):
        task = task_in(Status.COMPLETED, make_task)
        row = ScrapeResult.objects.create(task=task, data_type="tweet", data={"text": "hi"})
        is_file = lambda response: "attachment" in response.get("Content-Disposition", "")  # noqa: E731
        return (task.pk if of_task else row.pk), is_file

    return target


def _opens_qr_login(make_task):
    account = PlatformAccount.objects.create(
        owner=make_task().owner, platform_type=3, account_name="shop-main"
    )
    page = reverse("admin:publishing_platformaccount_qr_login")
    return account.pk, lambda response: response.get("Location", "").startswith(page)


def _deletes_task(make_task):
    task = task_in(Status.COMPLETED, make_task)
    return task.pk, lambda response: not Task.objects.filter(pk=task.pk).exists()


CHANGE_TASK = "taskcenter.change_task"
VIEW_RESULTS = "scraping.view_scraperesult"
P, Q, F = Status.PENDING, Status.QUEUED, Status.FAILED
ACTION_CASES = [
    ActionCase("task-start", Task, "started_selected", CHANGE_TASK, _moves_task(P, Q)),
    ActionCase("task-stop", Task, "stopped_selected", CHANGE_TASK, _moves_task(Q, Status.STOPPED)),
    ActionCase(
        "task-cancel", Task, "cancelled_selected", CHANGE_TASK, _moves_task(P, Status.CANCELLED)
    ),
    ActionCase("task-retry", Task, "retried_selected", CHANGE_TASK, _moves_task(F, Q)),
    ActionCase(
        "task-export", Task, "export_task_results_csv", VIEW_RESULTS, _exports(of_task=True)
    ),
    ActionCase("task-delete", Task, "delete_selected", "taskcenter.delete_task", _deletes_task),
    ActionCase(
        "record-retry", PublishTaskRecord, "retried_selected", CHANGE_TASK, _moves_record(F, Q)
    ),
    ActionCase(
        "record-cancel",
        PublishTaskRecord,
        "cancelled_selected",
        CHANGE_TASK,
        _moves_record(P, Status.CANCELLED),
    ),
    ActionCase(
        "account-log-in-again",
        PlatformAccount,
        "log_in_again",
        "publishing.change_platformaccount",
        _opens_qr_login,
    ),
    ActionCase("results-csv", ScrapeResult, "export_csv", VIEW_RESULTS, _exports(of_task=False)),
    ActionCase("results-json", ScrapeResult, "export_json", VIEW_RESULTS, _exports(of_task=False)),
]


def _own_admins():
    """The model admins this project defines (not Django's or libraries')."""
    for model, model_admin in admin.site._registry.items():
        module = type(model_admin).__module__.split(".")[0]
        if module in {"taskcenter", "scraping", "publishing", "syncing", "generation"}:
            yield model, model_admin


def test_every_admin_action_declares_the_permissions_it_needs():
    for model, model_admin in admin.site._registry.items():
        for func, name, _ in model_admin._get_base_actions():
            perms = getattr(func, "allowed_permissions", ())
            assert perms, f"{model._meta.label} action {name!r} declares no permissions"
            for perm in perms:
                assert callable(getattr(model_admin, f"has_{perm}_permission", None)), (
                    f"{model._meta.label} action {name!r}: no has_{perm}_permission()"
                )


def test_every_own_admin_action_has_a_permission_case():
    # Django's own delete_selected, on the models that keep it, is Django's to test.
    declared = {
        (model, name)
        for model, model_admin in _own_admins()
        for _, name, _ in model_admin._get_base_actions()
        if name != "delete_selected" or model is Task
    }
    # Actions apps add to the task list through the core's registry, each with its own check.
    declared |= {(Task, extra.name) for extra in registry.task_actions()}
    assert declared == {(case.model, case.action) for case in ACTION_CASES}


def _post_action(client: Client, case: ActionCase, pk: int):
    data = {"action": case.action, "_selected_action": [pk], "index": "0"}
    if case.action == "delete_selected":
        data["post"] = "yes"  # the confirmation page's answer
    return client.post(case.changelist, data)


@pytest.mark.parametrize("case", ACTION_CASES, ids=str)
def test_bulk_action_without_its_permission_is_refused(login, make_task, case):
    pk, done = case.target(make_task)
    before = task_state()

    no_perms = _post_action(login(), case, pk)
    assert no_perms.status_code == 403
    if case.permission != case.view_permission:
        # Sees the list, but Django neither offers nor runs an action it lacks the right for.
        only_view = _post_action(login(case.view_permission), case, pk)
        assert only_view.status_code in (200, 302)
        assert not done(only_view)
    assert task_state() == before


@pytest.mark.parametrize("case", ACTION_CASES, ids=str)
def test_bulk_action_with_its_permission_runs(login, make_task, case):
    pk, done = case.target(make_task)
    client = login(case.view_permission, case.permission)

    response = _post_action(client, case, pk)

    assert response.status_code in (200, 302)
    assert done(response)
