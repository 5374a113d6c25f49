"""Tasks API: create, read, update, delete, batch, clone and the lifecycle actions."""

from __future__ import annotations

import pytest

from taskcenter import lifecycle
from taskcenter.models import EventVerb, Status, Task, TaskEvent

pytestmark = pytest.mark.django_db

TASKS = "/api/v1/tasks"


def events(task: Task) -> list[str]:
    return list(TaskEvent.objects.filter(task=task).order_by("id").values_list("verb", flat=True))


def test_create_task_is_pending_with_the_xget_field_names(api, user):
    body = {
        "task_name": "Count",
        "describe": "ten seconds",
        "task_type": "demo.countdown",
        "parameters": {"seconds": 10},
        "account_id": "account-123",
        "proxy_id": "proxy-456",
        "user_id": "alice",  # a non-staff caller may name only herself
    }
    response = api.post(TASKS, body, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    task = Task.objects.get()
    assert data["id"] == task.pk
    assert data["task_name"] == "Count"
    assert data["describe"] == "ten seconds"
    assert data["status"] == "PENDING"
    assert data["parameters"] == {"seconds": 10, "interval": 1.0}
    assert data["user_id"] == str(user.pk)  # the owner's id
    assert data["owner"] == "alice"
    assert data["error_message"] is None
    assert task.owner == user
    assert task.status == Status.PENDING
    assert task.account_id == "account-123"
    assert events(task) == [EventVerb.CREATED]


@pytest.mark.parametrize("how", ["body", "query"])
def test_create_with_start_queues_at_once(api, how):
    body = {"task_type": "demo.noop"}
    url = TASKS
    if how == "body":
        body["start"] = True
    else:
        url += "?start=true"
    response = api.post(url, body, format="json")
    assert response.status_code == 201
    assert response.json()["status"] == "QUEUED"
    assert Task.objects.get().status == Status.QUEUED


def test_create_ignores_read_only_fields(api):
    response = api.post(
        TASKS,
        {"task_type": "demo.noop", "status": "COMPLETED", "attempts": 9, "result": {"x": 1}},
        format="json",
    )
    assert response.status_code == 201
    task = Task.objects.get()
    assert (task.status, task.attempts, task.result) == (Status.PENDING, 0, None)


def test_create_unknown_kind_is_422_naming_task_type_and_known_kinds(api):
    response = api.post(TASKS, {"task_type": "NO_SUCH_TYPE"}, format="json")
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "task_type"]
    assert "'demo.noop'" in error["msg"]
    assert error["type"] == "enum"
    assert error["input"] == "NO_SUCH_TYPE"
    assert not Task.objects.exists()


def test_create_bad_parameters_names_the_nested_field(api):
    response = api.post(
        TASKS, {"task_type": "demo.countdown", "parameters": {"seconds": 0}}, format="json"
    )
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "parameters", "seconds"]
    assert error["type"] == "greater_than_equal"
    assert error["ctx"] == {"ge": 1}
    assert not Task.objects.exists()


def test_create_missing_task_type(api):
    response = api.post(TASKS, {}, format="json")
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"type": "missing", "loc": ["body", "task_type"], "msg": "Field required", "input": {}}
    ]


def test_list_and_detail(api, make_task):
    first = make_task(name="one")
    second = make_task(name="two")
    response = api.get(TASKS)
    assert response.status_code == 200
    data = response.json()
    assert data["total"] == 2
    assert data["page"] == 1
    assert data["size"] == 20
    assert data["pages"] == 1
    assert [item["id"] for item in data["items"]] == [second.pk, first.pk]
    detail = api.get(f"{TASKS}/{first.pk}")
    assert detail.status_code == 200
    assert detail.json()["task_name"] == "one"


def test_unknown_task_is_404_json(api):
    response = api.get(f"{TASKS}/999999")
    assert response.status_code == 404
    assert response.json() == {"detail": "Task not found"}
    # Ids too long for the column never reach the database, and ids that are no number at all
    # are the same 404, as the XGet scraper API answers any id it cannot find.
    assert api.get(f"{TASKS}/{'9' * 40}").json() == {"detail": "Task not found"}
    assert api.get(f"{TASKS}/task-abc123").json() == {"detail": "Task not found"}


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_pending_task(api, make_task, method):
    task = make_task("demo.countdown", {"seconds": 5}, name="old")
    response = getattr(api, method)(
        f"{TASKS}/{task.pk}",
        {"task_name": "new", "describe": "d", "parameters": {"seconds": 7}, "status": "COMPLETED"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    task.refresh_from_db()
    assert (task.name, task.description, task.status) == ("new", "d", Status.PENDING)
    assert task.parameters == {"seconds": 7, "interval": 1.0}
    assert events(task)[-1] == EventVerb.UPDATED


def test_update_running_task_parameters_is_409_but_labels_are_editable(api, make_task):
    task = make_task("demo.countdown", {"seconds": 5}, start=True)
    lifecycle.claim_attempt(task, worker_id="w")
    response = api.patch(f"{TASKS}/{task.pk}", {"parameters": {"seconds": 9}}, format="json")
    assert response.status_code == 409
    assert response.json()["status"] == "RUNNING"
    task.refresh_from_db()
    assert task.parameters["seconds"] == 5
    response = api.patch(f"{TASKS}/{task.pk}", {"task_name": "renamed"}, format="json")
    assert response.status_code == 200
    task.refresh_from_db()
    assert task.name == "renamed"
    assert task.status == Status.RUNNING


def test_update_bad_parameters_is_422(api, make_task):
    task = make_task("demo.countdown", {"seconds": 5})
    response = api.patch(f"{TASKS}/{task.pk}", {"parameters": {"seconds": "x"}}, format="json")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "parameters", "seconds"]
    task.refresh_from_db()
    assert task.parameters["seconds"] == 5


def test_delete_task_with_history(api, make_task):
    task = make_task("demo.noop", start=True)
    _, execution = lifecycle.claim_attempt(task, worker_id="w")
    lifecycle.complete_attempt(execution)
    response = api.delete(f"{TASKS}/{task.pk}")
    assert response.status_code == 200
    assert response.json() == {"message": "Task and related results deleted successfully"}
    assert not Task.objects.filter(pk=task.pk).exists()
    assert not TaskEvent.objects.filter(task_id=task.pk).exists()


def test_delete_running_task_is_409(api, make_task):
    task = make_task("demo.noop", start=True)
    lifecycle.claim_attempt(task, worker_id="w")
    response = api.delete(f"{TASKS}/{task.pk}")
    assert response.status_code == 409
    assert response.json()["status"] == "RUNNING"
    assert Task.objects.filter(pk=task.pk).exists()


@pytest.mark.parametrize(
    ("action", "setup", "expected", "verb"),
    [
        ("start", None, Status.QUEUED, EventVerb.QUEUED),
        ("stop", "start", Status.STOPPED, EventVerb.STOPPED),
        ("cancel", None, Status.CANCELLED, EventVerb.CANCELLED),
        ("retry", "cancel", Status.QUEUED, EventVerb.RETRIED),
    ],
)
def test_actions_move_the_task(api, make_task, user, action, setup, expected, verb):
    task = make_task("demo.noop")
    if setup:
        getattr(lifecycle, f"{setup}_task")(task, actor=user)
    response = api.post(f"{TASKS}/{task.pk}/{action}")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == expected
    task.refresh_from_db()
    assert task.status == expected
    event = TaskEvent.objects.filter(task=task).latest("id")
    assert event.verb == verb
    assert event.actor_user == user


@pytest.mark.parametrize(
    ("action", "current"),
    [("stop", "PENDING"), ("retry", "PENDING"), ("start", "CANCELLED"), ("cancel", "CANCELLED")],
)
def test_illegal_action_is_409_with_current_status(api, make_task, action, current):
    task = make_task("demo.noop")
    if current == "CANCELLED":
        lifecycle.cancel_task(task)
    before = events(task)
    response = api.post(f"{TASKS}/{task.pk}/{action}")
    assert response.status_code == 409
    assert response.json()["status"] == current
    assert current in response.json()["detail"]
    task.refresh_from_db()
    assert task.status == current
    assert events(task) == before


def test_cancel_records_reason(api, make_task):
    task = make_task("demo.noop")
    response = api.post(f"{TASKS}/{task.pk}/cancel", {"reason": "wrong account"}, format="json")
    assert response.status_code == 200
    assert TaskEvent.objects.filter(task=task).latest("id").data == {"reason": "wrong account"}


def test_events_are_paginated_oldest_first(api, make_task):
    task = make_task("demo.noop")
    lifecycle.start_task(task)
    lifecycle.stop_task(task)
    response = api.get(f"{TASKS}/{task.pk}/events")
    assert response.status_code == 200
    data = response.json()
    assert data["total"] == 3
    assert [e["verb"] for e in data["items"]] == ["created", "queued", "stopped"]
    assert data["items"][1]["from_status"] == "PENDING"


def test_clone_copies_and_edits_parameters(api, make_task):
    source = make_task("demo.countdown", {"seconds": 5, "interval": 0.5}, name="src", priority=7)
    lifecycle.cancel_task(source)
    response = api.post(
        f"{TASKS}/{source.pk}/clone", {"parameters": {"seconds": 8}, "start": True}, format="json"
    )
    assert response.status_code == 201, response.json()
    clone = Task.objects.get(pk=response.json()["id"])
    assert clone.pk != source.pk
    assert clone.parameters == {"seconds": 8, "interval": 0.5}
    assert (clone.name, clone.priority, clone.status) == ("src", 7, Status.QUEUED)
    source.refresh_from_db()
    assert source.status == Status.CANCELLED


def test_clone_with_bad_edit_is_422(api, make_task):
    source = make_task("demo.countdown", {"seconds": 5})
    response = api.post(
        f"{TASKS}/{source.pk}/clone", {"parameters": {"seconds": -1}}, format="json"
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "parameters", "seconds"]
    assert Task.objects.count() == 1


def test_batch_creates_all_with_one_batch_id(api):
    items = [{"task_type": "demo.noop", "task_name": f"t{i}"} for i in range(3)]
    response = api.post(f"{TASKS}/batch", items, format="json")
    assert response.status_code == 200, response.json()
    data = response.json()
    assert [item["task_name"] for item in data] == ["t0", "t1", "t2"]
    assert Task.objects.count() == 3
    assert len(set(Task.objects.values_list("batch_id", flat=True))) == 1


@pytest.mark.parametrize(
    ("bad", "loc"),
    [
        ({"task_type": "nope"}, ["body", 1, "task_type"]),
        (
            {"task_type": "demo.countdown", "parameters": {"seconds": 0}},
            ["body", 1, "parameters", "seconds"],
        ),
        ({"task_type": "demo.noop", "priority": 1000}, ["body", 1, "priority"]),
    ],
)
def test_batch_is_all_or_nothing(api, bad, loc):
    items = [{"task_type": "demo.noop"}, bad, {"task_type": "demo.noop", "start": True}]
    response = api.post(f"{TASKS}/batch", items, format="json")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == loc
    assert not Task.objects.exists()
    assert not TaskEvent.objects.exists()


def test_batch_size_is_capped(api):
    response = api.post(f"{TASKS}/batch", [{"task_type": "demo.noop"}] * 101, format="json")
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "too_long"
    assert not Task.objects.exists()
    response = api.post(f"{TASKS}/batch", [], format="json")
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "too_short"
    response = api.post(f"{TASKS}/batch", {"task_type": "demo.noop"}, format="json")
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "list_type"


def test_statistics_counts_rates_and_durations(api, make_task, other_user):
    done = make_task("demo.noop", start=True, platform="x")
    _, execution = lifecycle.claim_attempt(done, worker_id="w")
    lifecycle.complete_attempt(execution)
    failed = make_task("demo.noop", start=True)
    _, execution = lifecycle.claim_attempt(failed, worker_id="w")
    lifecycle.fail_attempt(execution, error="boom", permanent=True)
    make_task("demo.countdown")
    make_task("demo.noop", owner=other_user)  # not alice's: not counted
    response = api.get(f"{TASKS}/statistics")
    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["total"] == 3
    assert data["by_status"]["COMPLETED"] == 1
    assert data["by_status"]["FAILED"] == 1
    assert data["by_status"]["PENDING"] == 1
    assert data["by_status"]["RUNNING"] == 0
    assert data["by_type"] == {"demo.countdown": 1, "demo.noop": 2}
    assert data["by_platform"] == {"": 2, "x": 1}
    assert data["success_rate"] == 0.5
    assert data["duration"]["count"] == 1
    assert data["duration"]["p50"] is not None
    filtered = api.get(f"{TASKS}/statistics?status=COMPLETED").json()
    assert filtered["total"] == 1
    assert filtered["success_rate"] == 1.0


def test_statistics_percentiles_use_nearest_rank(api, make_task):
    from taskcenter.api.statistics import duration_percentiles
    from taskcenter.models import TaskExecution

    task = make_task("demo.noop")
    TaskExecution.objects.bulk_create(
        TaskExecution(task=task, attempt=i, status="COMPLETED", duration=float(i))
        for i in range(1, 101)
    )
    result = duration_percentiles(TaskExecution.objects.all())
    assert result == {"count": 100, "p50": 50.0, "p95": 95.0, "approximate": False}
    assert duration_percentiles(TaskExecution.objects.none()) == {
        "count": 0,
        "p50": None,
        "p95": None,
        "approximate": False,
    }


def test_statistics_count_each_attempt_once_when_tasks_have_several(api, make_task):
    from taskcenter.models import TaskExecution

    tasks = [make_task("demo.noop") for _ in range(3)]
    # Three attempts each (failed, failed, completed): durations 1-9 s, one row per attempt.
    TaskExecution.objects.bulk_create(
        TaskExecution(
            task=task,
            attempt=attempt,
            status="COMPLETED" if attempt == 3 else "FAILED",
            duration=float(3 * n + attempt),
        )
        for n, task in enumerate(tasks)
        for attempt in (1, 2, 3)
    )

    # A time window takes the row path: exact nearest-rank values.
    exact = api.get(f"{TASKS}/statistics?created_after=2000-01-01").json()["duration"]
    # No filter reads the tallies: the same attempts, values from the histogram.
    tallied = api.get(f"{TASKS}/statistics").json()["duration"]

    # Only the completed attempts (3, 6, 9 s) count, each once.
    assert exact == {"count": 3, "p50": 6.0, "p95": 9.0, "approximate": False}
    assert tallied["count"] == 3
    assert tallied["approximate"] is True
    assert tallied["p50"] == pytest.approx(6.0, rel=0.09)
    assert tallied["p95"] == pytest.approx(9.0, rel=0.09)
