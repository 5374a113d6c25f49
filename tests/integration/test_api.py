"""The integration tasks table at /api/integration/tasks: rows, filters, statuses 0-3, indexes."""

from __future__ import annotations

import json
import time

import pytest
from django.db import connection
from django.urls import reverse

from taskcenter import lifecycle
from taskcenter.api.status_words import INTEGRATION, STATUS_WORDS
from taskcenter.models import Status, Task

pytestmark = pytest.mark.django_db

URL = "/api/integration/tasks"
ROW_FIELDS = {
    "id",
    "integration_id",
    "user_id",
    "client_id",
    "account_id",
    "template_id",
    "argument",
    "status",
    "created_at",
    "updated_at",
}


@pytest.fixture(autouse=True)
def untyped_rows_run_noop(settings):
    """As an operator who wants untyped rows recorded and done at once would configure it."""
    settings.TASKCENTER = {**settings.TASKCENTER, "INTEGRATION_KIND": "noop"}


def row_body(**changes) -> dict:
    body = {
        "integration_id": 1,
        "client_id": 2,
        "account_id": 3,
        "template_id": 4,
        "argument": '{"project":"project_name", "status": "offline"}',
    }
    body.update(changes)
    return body


def create(client, **changes):
    return client.post(URL, row_body(**changes), format="json")


def created(client, **changes) -> dict:
    response = create(client, **changes)
    assert response.status_code == 201, response.json()
    return response.json()["data"]


def listed(client, **query) -> list[int]:
    response = client.get(URL, query)
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["data"]["tasks"]]


def test_create_answers_a_row_with_exactly_the_integration_tables_fields(api):
    before = int(time.time() * 1000)

    row = created(api)

    assert set(row) == ROW_FIELDS
    assert row["integration_id"] == 1
    assert row["client_id"] == 2
    assert row["account_id"] == 3
    assert row["template_id"] == 4
    assert row["user_id"] == api.user.pk
    assert row["status"] == 0
    assert json.loads(row["argument"]) == {"project": "project_name", "status": "offline"}
    assert before - 5 <= row["created_at"] <= int(time.time() * 1000) + 5
    assert isinstance(row["updated_at"], int)
    task = Task.objects.get(pk=row["id"])
    assert task.status == Status.QUEUED
    assert task.task_type == "noop"
    assert task.owner == api.user
    assert (task.integration_id, task.client_id, task.template_id) == (1, 2, 4)
    assert task.account_id == "3"
    assert task.parameters == {"project": "project_name", "status": "offline"}


def test_create_runs_the_named_kind_with_the_argument_as_its_parameters(api):
    row = created(api, task_type="demo.sleep", argument='{"ms": 5}')

    task = Task.objects.get(pk=row["id"])
    assert task.task_type == "demo.sleep"
    assert task.parameters == {"ms": 5}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"integration_id": None}, "integration_id"),
        ({"integration_id": "1"}, "integration_id"),
        ({"client_id": -1}, "client_id"),
        ({"template_id": 1.5}, "template_id"),
        ({"account_id": True}, "account_id"),
        ({"argument": {"project": "p"}}, "argument"),
        ({"argument": "not json"}, "argument"),
        ({"argument": "[1, 2]"}, "argument"),
        ({"status": 2}, "status"),
        ({"task_type": "no.such"}, "task_type"),
        ({"task_type": "demo.sleep", "argument": '{"ms": -1}'}, "argument.ms"),
        ({"user_id": 999999}, "user_id"),
    ],
)
def test_create_refuses_bad_rows_naming_the_field_and_writes_nothing(api, changes, field):
    body = {k: v for k, v in row_body(**changes).items() if v is not None}

    response = api.post(URL, body, format="json")

    assert response.status_code == 400
    assert field in [f["field"] for f in response.json()["error"]["fields"]]
    assert not Task.objects.exists()


def test_staff_may_create_for_another_user_and_users_may_not(api, other_api, staff_api):
    refused = create(api, user_id=other_api.user.pk)
    row = created(staff_api, user_id=other_api.user.pk)

    assert refused.status_code == 400
    assert row["user_id"] == other_api.user.pk
    assert Task.objects.get(pk=row["id"]).owner == other_api.user


def test_list_filters_by_each_indexed_column(api, staff_api, other_api):
    a = created(api, integration_id=10, client_id=1, template_id=7, account_id=70)["id"]
    b = created(api, integration_id=10, client_id=2, template_id=7, account_id=71)["id"]
    c = created(api, integration_id=11, client_id=2, template_id=8, account_id=70)["id"]
    theirs = created(other_api, integration_id=10)["id"]
    lifecycle.create_task(owner=api.user, task_type="demo.noop")  # no integration_id: not a row

    assert listed(api) == [c, b, a]
    assert listed(api, integration_id=10) == [b, a]
    assert listed(api, client_id=2) == [c, b]
    assert listed(api, template_id=7, client_id=1) == [a]
    assert listed(api, account_id=70) == [c, a]
    assert listed(api, integration_id=10, client_id=2, template_id=7) == [b]
    assert listed(api, user_id=api.user.pk) == [c, b, a]
    assert listed(api, user_id=other_api.user.pk) == []  # not theirs to see
    assert listed(staff_api, user_id=other_api.user.pk) == [theirs]
    assert listed(staff_api, integration_id=10) == [theirs, b, a]


def test_list_filters_by_numeric_status_through_the_one_table(api):
    queued = created(api)["id"]
    running = created(api)["id"]
    lifecycle.claim_attempt(running, worker_id="w")
    done = created(api)["id"]
    _, execution = lifecycle.claim_attempt(done, worker_id="w")
    lifecycle.complete_attempt(execution)
    cancelled = created(api)["id"]
    lifecycle.cancel_task(cancelled)

    assert listed(api, status=0) == [queued]
    assert listed(api, status=1) == [running]
    assert listed(api, status=2) == [done]
    assert listed(api, status=3) == [cancelled]
    rows = {row["id"]: row["status"] for row in api.get(URL).json()["data"]["tasks"]}
    for pk, row_status in rows.items():
        canonical = Task.objects.get(pk=pk).status
        assert row_status == STATUS_WORDS[canonical][INTEGRATION]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": 4}, "status"),
        ({"status": "running"}, "status"),
        ({"status": "-1"}, "status"),
        ({"integration_id": "x"}, "integration_id"),
        ({"client_id": "-2"}, "client_id"),
        ({"account_id": "9" * 30}, "account_id"),
        ({"page": 0}, "page"),
        ({"size": 1000}, "size"),
    ],
)
def test_list_refuses_bad_filters_naming_them(api, query, field):
    response = api.get(URL, query)

    assert response.status_code == 400
    assert [f["field"] for f in response.json()["error"]["fields"]] == [field]


def test_detail_is_a_row_and_another_users_row_is_a_404(api, other_api):
    mine = created(api)["id"]
    theirs = created(other_api)["id"]

    response = api.get(f"{URL}/{mine}")

    assert response.status_code == 200
    assert set(response.json()["data"]) == ROW_FIELDS
    assert api.get(f"{URL}/{theirs}").status_code == 404
    assert api.get(f"{URL}/abc").json()["error"]["code"] == "not_found"


def test_an_integration_task_is_one_task_in_every_view(api, staff_user, client):
    row = created(api)
    client.force_login(staff_user)

    assert api.post(f"/api/v1/tasks/{row['id']}/cancel").status_code == 200
    now = api.get(f"{URL}/{row['id']}").json()["data"]
    canonical = api.get(f"/api/v1/tasks/{row['id']}").json()
    page = client.get(reverse("admin:taskcenter_task_change", args=[row["id"]])).content

    assert now["status"] == 3
    assert now["updated_at"] > row["updated_at"] or now["updated_at"] >= row["created_at"]
    assert canonical["status"] == "CANCELLED"
    assert b"Cancelled</span>" in page


def test_the_integration_tables_indexed_columns_each_lead_an_index(transactional_db):
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Task._meta.db_table)
    leading = {c["columns"][0] for c in constraints.values() if c["index"] and c["columns"]}
    composites = [c["columns"] for c in constraints.values() if c["index"]]

    # idx_integration_id is served by idx_task's leading column; idx_user_id is the owner's.
    for column in ("integration_id", "owner_id", "client_id", "account_id", "template_id"):
        assert column in leading, column
    assert "status" in leading
    assert ["integration_id", "client_id", "template_id"] in composites


def test_a_row_whose_kind_the_owner_cannot_pay_for_is_a_402_and_nothing_is_created(api):
    response = create(api, task_type="suno.lyrics", argument='{"prompt": "rain"}')

    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "payment_required"
    assert error["needed"] == 2
    assert error["balance"] == 0
    assert "quota" in error["message"].lower()
    assert not Task.objects.exists()


@pytest.mark.django_db
def test_a_row_without_a_kind_is_refused_naming_task_type_unless_the_operator_set_one(
    api, settings
):
    settings.TASKCENTER = {**settings.TASKCENTER, "INTEGRATION_KIND": ""}
    response = api.post(URL, row_body(), format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False
    assert [f["field"] for f in body["error"]["fields"]] == ["task_type"]
    assert "TASKCENTER_INTEGRATION_KIND" in json.dumps(body)
    assert not Task.objects.exists()
    # Naming the kind in the row works without any setting.
    typed = api.post(URL, row_body(task_type="noop"), format="json")
    assert typed.status_code == 201, typed.content
    assert Task.objects.get().task_type == "noop"
