"""The demo.* kinds exist only while TASKCENTER_DEMO_KINDS is on; their old rows stay harmless."""

from __future__ import annotations

import pytest

from taskcenter import lifecycle
from taskcenter.kinds import all_kinds
from taskcenter.models import EventVerb, ExecutionStatus, Status, Task, TaskEvent
from tests.support.processes import wait_for

TASKS = "/api/v1/tasks"
OFF = "demo kinds are turned off"


@pytest.fixture
def demo_off(settings):
    settings.TASKCENTER = {**settings.TASKCENTER, "DEMO_KINDS": False}


@pytest.mark.django_db
def test_creating_a_demo_task_while_they_are_off_is_422_naming_task_type(api, demo_off):
    response = api.post(
        TASKS,
        {"task_type": "demo.account", "account_id": "a", "parameters": {"cooldown": 60}},
        format="json",
    )

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "task_type"]
    assert error["type"] == "enum"
    assert "'noop'" in error["ctx"]["expected"]
    assert "demo." not in error["ctx"]["expected"]
    assert not Task.objects.exists()
    assert not [name for name in all_kinds() if name.startswith("demo.")]
    assert {"noop", "http.request"} <= set(all_kinds())


@pytest.mark.django_db
def test_the_schema_lists_demo_kinds_only_while_they_are_on(api, settings):
    assert "demo.account" in api.get("/api/schema/", {"format": "json"}).content.decode()

    settings.TASKCENTER = {**settings.TASKCENTER, "DEMO_KINDS": False}

    schema = api.get("/api/schema/", {"format": "json"})
    assert schema.status_code == 200
    assert "demo.account" not in schema.content.decode()


@pytest.mark.django_db
def test_demo_rows_made_before_they_were_turned_off_still_list_show_and_refuse_edits(
    api, client, staff_user, make_task, settings
):
    task = make_task("demo.countdown", {"seconds": 5})
    settings.TASKCENTER = {**settings.TASKCENTER, "DEMO_KINDS": False}
    client.force_login(staff_user)

    assert api.get(TASKS).status_code == 200
    assert api.get(f"{TASKS}/{task.pk}").json()["task_type"] == "demo.countdown"
    assert client.get("/admin/taskcenter/task/").status_code == 200
    assert client.get(f"/admin/taskcenter/task/{task.pk}/change/").status_code == 200
    edit = api.patch(f"{TASKS}/{task.pk}", {"parameters": {"seconds": 9}}, format="json")
    assert edit.status_code == 400
    assert edit.json()["detail"][0]["loc"] == ["task_type"]
    assert Task.objects.get(pk=task.pk).parameters["seconds"] == 5


@pytest.mark.django_db
def test_an_integration_row_without_a_kind_never_runs_a_demo_kind(api, demo_off):
    row = {"integration_id": 1, "client_id": 2, "account_id": 3, "template_id": 4, "argument": "{}"}
    response = api.post("/api/integration/tasks", row, format="json")

    assert response.status_code == 400, response.content
    assert "task_type" in response.content.decode()
    assert not Task.objects.exists()


@pytest.mark.slow
def test_a_worker_with_demo_kinds_off_fails_a_queued_demo_task_for_good(make_task, start_worker):
    # demo.flaky allows three attempts: failing after one shows the failure is permanent.
    task = make_task("demo.flaky", {"fail_times": 0}, start=True)
    assert task.max_attempts == 3

    worker = start_worker(env={"TASKCENTER_DEMO_KINDS": "false"})
    wait_for(lambda: Task.objects.get(pk=task.pk).status == Status.FAILED, timeout=60)
    # Stopped before the retry below: a running worker claims the retried task at once (woken
    # by its announcement), and this one would fail it again.
    worker.terminate()

    task.refresh_from_db()
    assert OFF in task.error_message
    assert task.attempts == 1
    [execution] = task.executions.all()
    assert execution.status == ExecutionStatus.FAILED
    failed = TaskEvent.objects.get(task=task, verb=EventVerb.FAILED)
    assert failed.data["permanent"] is True
    lifecycle.retry_task(task)  # an operator may still retry it once demo kinds are back on
    assert Task.objects.get(pk=task.pk).status == Status.QUEUED
