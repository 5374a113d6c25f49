"""The operators' console renders, and its bulk actions and deletes go through the lifecycle."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from scraping.models import ScrapeResult
from taskcenter import lifecycle
from taskcenter.admin.tasks import TaskAdmin
from taskcenter.models import Status, Task, TaskEvent, TaskExecution


def failed_task(make_task) -> Task:
    task = make_task("demo.flaky", {"permanent": True}, start=True)
    _, execution = lifecycle.claim_attempt(task.pk, worker_id="w")
    return lifecycle.fail_attempt(execution, error="Account suspended", permanent=True)


def test_task_list_filters_by_status_and_shows_badges(admin_client, make_task):
    failed = failed_task(make_task)
    make_task("demo.noop")

    response = admin_client.get(reverse("admin:taskcenter_task_changelist"), {"status": "FAILED"})

    assert response.status_code == 200
    rows = list(response.context["cl"].result_list)
    assert rows == [failed]
    assert b"Failed</span>" in response.content


def test_task_page_shows_history_and_pretty_parameters(admin_client, make_task):
    task = failed_task(make_task)

    response = admin_client.get(reverse("admin:taskcenter_task_change", args=[task.pk]))

    assert response.status_code == 200
    assert b"Account suspended" in response.content
    assert b"&quot;permanent&quot;: true" in response.content


def test_bulk_retry_changes_failed_tasks_and_reports_refusals(admin_client, staff_user, make_task):
    failed = [failed_task(make_task) for _ in range(2)]
    pending = make_task("demo.noop")

    response = admin_client.post(
        reverse("admin:taskcenter_task_changelist"),
        {"action": "retried_selected", "_selected_action": [t.pk for t in [*failed, pending]]},
        follow=True,
    )

    assert response.status_code == 200
    texts = [str(m) for m in response.context["messages"]]
    assert "Retried: 2 task(s)." in texts
    assert any("Refused for 1 task(s)" in t and "1 PENDING" in t for t in texts)
    for task in failed:
        task.refresh_from_db()
        assert task.status == Status.QUEUED
        assert task.events.get(verb="retried").actor_user == staff_user
    pending.refresh_from_db()
    assert pending.status == Status.PENDING


def test_executions_admin_lists_failed_and_lost_attempts(admin_client, make_task):
    failed_task(make_task)

    response = admin_client.get(
        reverse("admin:taskcenter_taskexecution_changelist"), {"outcome": "failed_or_lost"}
    )

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 1


def test_non_staff_cannot_open_the_console(client, user):
    client.force_login(user)
    response = client.get(reverse("admin:taskcenter_task_changelist"))
    assert response.status_code == 302


def test_task_page_offers_only_the_legal_actions(admin_client, make_task):
    pending = make_task("demo.noop")
    failed = failed_task(make_task)

    def buttons(task):
        page = admin_client.get(reverse("admin:taskcenter_task_change", args=[task.pk]))
        return page.context["legal_actions"]

    assert buttons(pending) == ["start", "cancel"]
    assert buttons(failed) == ["retry"]


def test_action_button_applies_the_transition_and_get_changes_nothing(admin_client, make_task):
    task = make_task("demo.noop")
    url = reverse("admin:taskcenter_task_action", args=[task.pk, "cancel"])

    admin_client.get(url)
    assert Task.objects.get(pk=task.pk).status == Status.PENDING

    response = admin_client.post(url, follow=True)
    assert Task.objects.get(pk=task.pk).status == Status.CANCELLED
    assert "cancel done" in str(next(iter(response.context["messages"])))

    response = admin_client.post(url, follow=True)
    assert "it is CANCELLED" in str(next(iter(response.context["messages"])))


def test_dashboard_counts_statuses_and_the_failure_rate(admin_client, make_task):
    failed_task(make_task)
    done = make_task("demo.noop", start=True)
    _, execution = lifecycle.claim_attempt(done.pk, worker_id="w")
    lifecycle.complete_attempt(execution, result={})
    make_task("demo.noop")

    response = admin_client.get(reverse("admin:taskcenter_task_dashboard"))

    assert response.status_code == 200
    rows = {status: count for status, _, count in response.context["status_rows"]}
    assert rows[Status.FAILED] == rows[Status.COMPLETED] == rows[Status.PENDING] == 1
    assert response.context["failure_rate"] == 50.0
    assert b"Account suspended" in response.content


def test_saving_the_task_form_writes_only_edited_fields(admin_client, make_task, monkeypatch):
    task = make_task("demo.noop", start=True)
    load = TaskAdmin.get_object

    def load_then_a_worker_claims(self, request, object_id, from_field=None):
        loaded = load(self, request, object_id, from_field)
        if request.method == "POST":
            lifecycle.claim_attempt(task.pk, worker_id="w")  # between the admin's read and save
        return loaded

    monkeypatch.setattr(TaskAdmin, "get_object", load_then_a_worker_claims)

    response = admin_client.post(
        reverse("admin:taskcenter_task_change", args=[task.pk]),
        {
            "name": "Renamed",
            "description": "",
            "priority": "5",
            "executions-TOTAL_FORMS": "0",
            "executions-INITIAL_FORMS": "0",
            "events-TOTAL_FORMS": "0",
            "events-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302
    task.refresh_from_db()
    assert (task.name, task.priority) == ("Renamed", 5)
    assert task.status == Status.RUNNING  # not the QUEUED the admin had loaded


def completed_task_with_history(make_task) -> Task:
    task = make_task("demo.noop", start=True)
    _, execution = lifecycle.claim_attempt(task.pk, worker_id="w")
    ScrapeResult.objects.create(task=task, execution=execution, data_type="tweet", data={"n": 1})
    return lifecycle.complete_attempt(execution, result={})


def history_rows(task_ids: list[int]) -> dict[str, int]:
    return {
        "tasks": Task.objects.filter(pk__in=task_ids).count(),
        "executions": TaskExecution.objects.filter(task_id__in=task_ids).count(),
        "events": TaskEvent.objects.filter(task_id__in=task_ids).count(),
        "results": ScrapeResult.objects.filter(task_id__in=task_ids).count(),
    }


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.mark.parametrize("superuser", [True, False], ids=["superuser", "delete-permission"])
def test_task_page_deletes_a_finished_task_with_its_history(client, make_task, superuser):
    task = completed_task_with_history(make_task)
    assert all(history_rows([task.pk]).values())  # it ran: execution, events and a result
    operator = get_user_model().objects.create_user(
        "deleter", password="deleter-pass-123", is_staff=True, is_superuser=superuser
    )
    for codename in ("view_task", "delete_task"):
        operator.user_permissions.add(
            Permission.objects.get(content_type__app_label="taskcenter", codename=codename)
        )
    client.force_login(operator)
    url = reverse("admin:taskcenter_task_delete", args=[task.pk])

    confirm = client.get(url)
    assert confirm.status_code == 200
    assert not confirm.context["perms_lacking"]
    response = client.post(url, {"post": "yes"})

    assert response.status_code == 302
    assert history_rows([task.pk]) == {"tasks": 0, "executions": 0, "events": 0, "results": 0}


def test_bulk_delete_removes_finished_tasks_with_their_history(admin_client, make_task):
    tasks = [completed_task_with_history(make_task), failed_task(make_task)]
    ids = [task.pk for task in tasks]
    changelist = reverse("admin:taskcenter_task_changelist")
    selection = {"action": "delete_selected", "_selected_action": ids}

    confirm = admin_client.post(changelist, selection)
    assert confirm.status_code == 200
    assert not confirm.context["perms_lacking"]
    response = admin_client.post(changelist, {**selection, "post": "yes"}, follow=True)

    assert "Successfully deleted 2 tasks." in messages_of(response)
    assert history_rows(ids) == {"tasks": 0, "executions": 0, "events": 0, "results": 0}


def test_bulk_delete_with_a_running_task_says_cancel_it_first_and_deletes_nothing(
    admin_client, make_task
):
    done = completed_task_with_history(make_task)
    running = make_task("demo.noop", start=True)
    lifecycle.claim_attempt(running.pk, worker_id="w")
    ids = [done.pk, running.pk]
    before = history_rows(ids)

    for confirmed in ({}, {"post": "yes"}):
        response = admin_client.post(
            reverse("admin:taskcenter_task_changelist"),
            {"action": "delete_selected", "_selected_action": ids, **confirmed},
            follow=True,
        )
        texts = messages_of(response)
        assert any(f"#{running.pk} RUNNING" in t and "Cancel them first" in t for t in texts)
        assert not any("permission" in t for t in texts)

    assert history_rows(ids) == before
    assert Task.objects.get(pk=running.pk).status == Status.RUNNING


def test_running_task_cannot_be_deleted_from_the_console(admin_client, make_task):
    task = make_task("demo.noop", start=True)
    lifecycle.claim_attempt(task.pk, worker_id="w")
    change_page = reverse("admin:taskcenter_task_change", args=[task.pk])
    url = reverse("admin:taskcenter_task_delete", args=[task.pk])

    assert admin_client.get(change_page).context["show_delete"] is False
    for response in (admin_client.get(url), admin_client.post(url, {"post": "yes"})):
        assert response.status_code == 302
        assert response["Location"] == change_page

    texts = messages_of(admin_client.get(change_page))
    assert f"Task #{task.pk} is RUNNING: cancel it first, then delete it." in texts
    assert Task.objects.get(pk=task.pk).status == Status.RUNNING
    assert TaskExecution.objects.filter(task=task).count() == 1


def test_view_site_link_leads_to_a_page_that_exists(admin_client):
    index = admin_client.get(reverse("admin:index"))
    site_url = index.context["site_url"]

    assert f'href="{site_url}"'.encode() in index.content
    assert admin_client.get(site_url).status_code == 200
