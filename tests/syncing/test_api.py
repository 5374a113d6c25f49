"""The data sync service's /api/sync/tasks endpoints: shapes, filters, envelope, errors and
status words."""

from __future__ import annotations

import pytest

from taskcenter import lifecycle
from taskcenter.api.status_words import SYNC, words
from taskcenter.models import EventVerb, Status, Task, TaskEvent

pytestmark = pytest.mark.django_db

URL = "/api/sync/tasks"


def create(client, **body):
    body.setdefault("data_source_id", "ds_123")
    body.setdefault("task_type", "full_sync")
    return client.post(URL, body, format="json")


def created_id(client, **body) -> str:
    response = create(client, **body)
    assert response.status_code == 201, response.json()
    return response.json()["data"]["id"]


def pk(public_id: str) -> int:
    return int(public_id.removeprefix("task_"))


def field_names(response) -> list[str]:
    return [f["field"] for f in response.json()["error"]["fields"]]


# --- create ----------------------------------------------------------------------------------


def test_create_queues_a_full_sync_with_the_data_sync_services_example_body(api):
    response = create(api, parameters={"batch_size": 1000, "timeout": 300})

    assert response.status_code == 201
    body = response.json()
    assert body["success"] is True
    task = body["data"]
    assert task["id"].startswith("task_")
    assert task["data_source_id"] == "ds_123"
    assert task["task_type"] == "full_sync"
    assert task["status"] == "pending"  # QUEUED shows as "pending" in this dialect
    assert task["parameters"] == {"batch_size": 1000, "timeout": 300.0}
    assert task["created_at"].endswith("Z")
    assert task["live"] is None
    row = Task.objects.get(pk=pk(task["id"]))
    assert row.status == Status.QUEUED
    assert row.task_type == "sync.full_sync"
    assert row.data_source_id == "ds_123"
    assert row.owner == api.user
    assert row.submitted_at is not None
    assert row.parameters == {
        "data_source_id": "ds_123",
        "interface_id": "",
        "batch_size": 1000,
        "timeout": 300.0,
    }


def test_create_applies_defaults_and_keeps_the_interface(api):
    task = create(api, task_type="incremental_sync", interface_id="orders").json()["data"]

    assert task["interface_id"] == "orders"
    assert task["task_type"] == "incremental_sync"
    assert task["parameters"] == {"batch_size": 500, "timeout": 300.0}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"task_type": "full_sync"}, "data_source_id"),
        ({"data_source_id": "ds_1"}, "task_type"),
        ({"data_source_id": "ds_1", "task_type": "mirror"}, "task_type"),
        ({"data_source_id": 123, "task_type": "full_sync"}, "data_source_id"),
        ({"data_source_id": "bad id/..", "task_type": "full_sync"}, "data_source_id"),
        ({"data_source_id": "ds_1", "task_type": "full_sync", "parameters": [1]}, "parameters"),
        (
            {"data_source_id": "ds_1", "task_type": "full_sync", "parameters": {"batch_size": 0}},
            "parameters.batch_size",
        ),
        (
            {
                "data_source_id": "ds_1",
                "task_type": "full_sync",
                "parameters": {"batch_size": 5001},
            },
            "parameters.batch_size",
        ),
        (
            {"data_source_id": "ds_1", "task_type": "full_sync", "parameters": {"timeout": "x"}},
            "parameters.timeout",
        ),
        (
            {"data_source_id": "ds_1", "task_type": "full_sync", "parameters": {"bach_size": 5}},
            "parameters.bach_size",
        ),
        (
            {
                "data_source_id": "ds_1",
                "task_type": "full_sync",
                "parameters": {"data_source_id": "ds_2"},
            },
            "parameters.data_source_id",
        ),
        ({"data_source_id": "ds_1", "task_type": "full_sync", "interface_id": 7}, "interface_id"),
    ],
)
def test_create_refuses_bad_input_naming_the_field_and_writes_nothing(api, body, field):
    response = api.post(URL, body, format="json")

    assert response.status_code == 400
    payload = response.json()
    assert payload["success"] is False
    assert payload["error"]["code"] == "invalid_argument"
    assert field in field_names(response)
    assert field in payload["error"]["message"]
    assert not Task.objects.exists()


def test_malformed_json_is_a_400_in_the_envelope(api):
    response = api.post(URL, "{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["success"] is False
    assert not Task.objects.exists()


def test_requests_without_credentials_are_refused_in_the_envelope(anon_api):
    response = anon_api.get(URL)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    assert create(anon_api).status_code == 401
    assert not Task.objects.exists()


# --- list ------------------------------------------------------------------------------------


def test_list_pages_newest_first_in_the_tasks_pagination_shape(api):
    ids = [created_id(api, data_source_id=f"ds_{n}") for n in range(3)]

    response = api.get(URL, {"page": 1, "size": 2})

    assert response.status_code == 200
    data = response.json()["data"]
    assert [t["id"] for t in data["tasks"]] == [ids[2], ids[1]]
    assert data["pagination"] == {"page": 1, "size": 2, "total": 3, "total_pages": 2}
    second = api.get(URL, {"page": 2, "size": 2}).json()["data"]
    assert [t["id"] for t in second["tasks"]] == [ids[0]]
    past_end = api.get(URL, {"page": 9, "size": 2}).json()["data"]
    assert past_end["tasks"] == []
    assert past_end["pagination"]["total"] == 3


def test_list_filters_by_data_source_status_word_and_type(api):
    running = created_id(api, data_source_id="ds_a")
    lifecycle.claim_attempt(pk(running), worker_id="w")
    queued = created_id(api, data_source_id="ds_a", task_type="incremental_sync")
    created_id(api, data_source_id="ds_b")

    def listed(**query) -> list[str]:
        response = api.get(URL, query)
        assert response.status_code == 200, response.json()
        return [t["id"] for t in response.json()["data"]["tasks"]]

    assert listed(status="running") == [running]
    assert listed(status="running", data_source_id="ds_b") == []
    assert listed(data_source_id="ds_a") == [queued, running]
    assert listed(data_source_id="ds_a", status="pending") == [queued]
    assert listed(task_type="incremental_sync") == [queued]
    assert listed(status="RUNNING") == [running]  # words are matched case-insensitively


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"page": 0}, "page"),
        ({"page": "x"}, "page"),
        ({"size": 101}, "size"),
        ({"size": "-1"}, "size"),
        ({"status": "done"}, "status"),
        ({"status": "QUEUED_NOW"}, "status"),
        ({"task_type": "mirror"}, "task_type"),
        ({"data_source_id": "ds\x00"}, "data_source_id"),
        ({"data_source_id": "d" * 65}, "data_source_id"),
    ],
)
def test_list_refuses_bad_query_parameters_naming_them(api, query, field):
    response = api.get(URL, query)

    assert response.status_code == 400
    assert field_names(response) == [field]


def test_unknown_status_word_lists_the_allowed_words(api):
    message = api.get(URL, {"status": "done"}).json()["error"]["message"]

    for word in words(SYNC):
        assert str(word) in message


def test_users_see_only_their_own_sync_tasks_and_staff_see_all(api, other_api, staff_api):
    mine = created_id(api)
    theirs = created_id(other_api)
    lifecycle.create_task(owner=api.user, task_type="demo.noop")  # not a sync task

    assert [t["id"] for t in api.get(URL).json()["data"]["tasks"]] == [mine]
    assert api.get(f"{URL}/{theirs}").status_code == 404
    assert api.post(f"{URL}/{theirs}/cancel").status_code == 404
    assert api.put(f"{URL}/{theirs}", {"config": {}}, format="json").status_code == 404
    assert Task.objects.get(pk=pk(theirs)).status == Status.QUEUED
    assert {t["id"] for t in staff_api.get(URL).json()["data"]["tasks"]} == {mine, theirs}


def test_a_task_of_another_kind_is_not_found_here(api):
    other = lifecycle.create_task(owner=api.user, task_type="demo.noop")

    response = api.get(f"{URL}/{other.pk}")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_method_on_what_cannot_be_a_task_id_is_a_404_and_on_an_id_a_405(api):
    task_id = created_id(api)

    # A cancel whose id was left out reads as a task named "cancel", which no id can be.
    missing = api.post(f"{URL}/cancel")
    wrong_method = api.post(f"{URL}/{task_id}")
    unknown = api.post(f"{URL}/task_99999999")

    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert missing.json()["error"]["message"] == "Sync task cancel not found"
    assert wrong_method.status_code == unknown.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"
    assert Task.objects.get(pk=pk(task_id)).status == Status.QUEUED


# --- detail ----------------------------------------------------------------------------------


def test_detail_accepts_the_task_prefixed_id_and_a_plain_number(api):
    task_id = created_id(api)

    by_prefixed_id = api.get(f"{URL}/{task_id}")
    by_number = api.get(f"{URL}/{pk(task_id)}")

    assert by_prefixed_id.status_code == by_number.status_code == 200
    assert by_prefixed_id.json()["data"]["id"] == by_number.json()["data"]["id"] == task_id
    assert api.get(f"{URL}/task_99999999").status_code == 404
    assert api.get(f"{URL}/task_{'9' * 30}").status_code == 404
    assert api.get(f"{URL}/ds_123").json()["error"]["code"] == "not_found"


def test_detail_of_a_running_task_merges_its_live_attempt(api):
    task_id = created_id(api)
    lifecycle.claim_attempt(pk(task_id), worker_id="worker-7")

    live = api.get(f"{URL}/{task_id}").json()["data"]["live"]

    assert live["worker_id"] == "worker-7"
    assert live["attempt"] == 1
    assert live["records_so_far"] == 0
    assert live["records_per_second"] == 0
    assert live["heartbeat_at"].endswith("Z")
    assert live["lease_expires_at"] is not None


# --- update ----------------------------------------------------------------------------------


def test_update_merges_config_into_a_pending_tasks_parameters(api):
    task_id = created_id(api, parameters={"batch_size": 100, "timeout": 60})

    response = api.put(f"{URL}/{task_id}", {"config": {"batch_size": 250}}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["data"]["parameters"] == {"batch_size": 250, "timeout": 60.0}
    row = Task.objects.get(pk=pk(task_id))
    assert row.parameters["batch_size"] == 250
    assert row.parameters["data_source_id"] == "ds_123"
    assert row.status == Status.QUEUED
    event = TaskEvent.objects.filter(task=row, verb=EventVerb.UPDATED).get()
    assert event.data == {"fields": ["parameters"], "keys": ["batch_size"]}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "config"),
        ({"config": "batch_size=5"}, "config"),
        ({"config": {"batch_size": 0}}, "config.batch_size"),
        ({"config": {"batch_size": "many"}}, "config.batch_size"),
        ({"config": {"timeout": None}}, "config.timeout"),
        ({"config": {"colour": "red"}}, "config.colour"),
        ({"config": {"data_source_id": "ds_9"}}, "config.data_source_id"),
    ],
)
def test_update_refuses_bad_config_and_changes_nothing(api, body, field):
    task_id = created_id(api, parameters={"batch_size": 100})

    response = api.put(f"{URL}/{task_id}", body, format="json")

    assert response.status_code == 400
    assert field in field_names(response)
    assert Task.objects.get(pk=pk(task_id)).parameters["batch_size"] == 100


def test_update_of_a_running_task_is_a_409_naming_its_status(api):
    task_id = created_id(api, parameters={"batch_size": 100})
    lifecycle.claim_attempt(pk(task_id), worker_id="w")

    response = api.put(f"{URL}/{task_id}", {"config": {"batch_size": 7}}, format="json")

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "conflict"
    assert error["status"] == "running"
    assert "running" in error["message"]
    assert task_id in error["message"]
    assert Task.objects.get(pk=pk(task_id)).parameters["batch_size"] == 100


def test_update_of_a_paused_task_is_refused_too(api):
    task_id = created_id(api)
    lifecycle.stop_task(pk(task_id))

    response = api.put(f"{URL}/{task_id}", {"config": {"batch_size": 7}}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["status"] == "paused"


# --- cancel and retry ------------------------------------------------------------------------


def test_cancel_then_retry_moves_the_task_and_a_second_cancel_is_a_409(api):
    task_id = created_id(api)

    cancelled = api.post(f"{URL}/{task_id}/cancel")
    again = api.post(f"{URL}/{task_id}/cancel")
    retried = api.post(f"{URL}/{task_id}/retry")

    assert cancelled.status_code == 200
    assert cancelled.json()["data"]["status"] == "cancelled"
    assert again.status_code == 409
    assert again.json()["error"]["status"] == "cancelled"
    assert retried.status_code == 200
    assert retried.json()["data"]["status"] == "pending"
    assert retried.json()["data"]["id"] == task_id
    assert Task.objects.get(pk=pk(task_id)).status == Status.QUEUED
    verbs = list(TaskEvent.objects.filter(task_id=pk(task_id)).values_list("verb", flat=True))
    assert verbs == [EventVerb.CREATED, EventVerb.CANCELLED, EventVerb.RETRIED]


def test_retry_of_a_queued_task_is_a_409(api):
    task_id = created_id(api)

    response = api.post(f"{URL}/{task_id}/retry")

    assert response.status_code == 409
    assert response.json()["error"]["status"] == "pending"


def test_wrong_method_is_a_405_in_the_envelope(api):
    task_id = created_id(api)

    response = api.get(f"{URL}/{task_id}/cancel")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
