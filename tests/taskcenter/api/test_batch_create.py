"""``POST /api/v1/tasks/batch`` through ``lifecycle.create_tasks``: one transaction for the
batch, every refused item named, and the answer the detail route gives for each task."""

from __future__ import annotations

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from rest_framework.serializers import ModelSerializer

from quota import ledger as quota
from quota.models import LedgerKind, QuotaBalance, QuotaLedgerEntry
from taskcenter import lifecycle
from taskcenter.api.serializers import BATCH_MAX, TaskSerializer
from taskcenter.models import EventVerb, Status, Task, TaskEvent
from tests.support.lifecycle import attempt_in

pytestmark = pytest.mark.django_db

BATCH = "/api/v1/tasks/batch"
LYRICS = {"task_type": "suno.lyrics", "parameters": {"prompt": "a song about queues"}}
LYRICS_PRICE = 2


def state() -> tuple:
    return (
        list(Task.objects.order_by("pk").values()),
        list(TaskEvent.objects.order_by("pk").values()),
        DBTaskResult.objects.count(),
        list(QuotaBalance.objects.order_by("user_id").values_list("user_id", "balance")),
        list(QuotaLedgerEntry.objects.order_by("pk").values()),
    )


def test_batch_answers_each_task_as_its_detail_route_does(api, user):
    quota.grant(user.pk, 100, note="tests")
    items = [
        {"task_type": "USER_TWEETS", "parameters": {"username": "elonmusk"}, "task_name": "a"},
        {**LYRICS, "start": True, "describe": "priced", "priority": 7},
        {"task_type": "demo.noop", "run_after": "2030-01-02T03:04:05+08:00", "start": True},
        {"task_type": "demo.countdown", "parameters": {"seconds": 3}, "account_id": "acc-1"},
        {"task_type": "demo.noop", "batch_id": "mine", "user_id": "alice"},
    ]

    response = api.post(BATCH, items, format="json")

    assert response.status_code == 200, response.json()
    answered = response.json()
    assert len(answered) == len(items)
    for row in answered:
        assert api.get(f"/api/v1/tasks/{row['id']}").json() == row
    assert [row["status"] for row in answered] == [
        "PENDING",
        "QUEUED",
        "QUEUED",
        "PENDING",
        "PENDING",
    ]
    batch_ids = {row["batch_id"] for row in answered}
    assert "mine" in batch_ids
    assert len(batch_ids) == 2


def test_batch_writes_events_jobs_and_one_charge_per_priced_task(api, user):
    quota.grant(user.pk, 1_000, note="tests")
    items = [
        {**LYRICS, "start": True} if n % 2 else {"task_type": "demo.noop"} for n in range(BATCH_MAX)
    ]

    response = api.post(BATCH, items, format="json")

    assert response.status_code == 200, response.json()
    ids = [row["id"] for row in response.json()]
    assert (
        sorted(TaskEvent.objects.filter(verb=EventVerb.CREATED).values_list("task_id", flat=True))
        == ids
    )
    queued = list(
        Task.objects.filter(status=Status.QUEUED).order_by("pk").values_list("pk", flat=True)
    )
    assert len(queued) == BATCH_MAX // 2
    assert sorted(job.args_kwargs["args"][0] for job in DBTaskResult.objects.all()) == queued
    charges = QuotaLedgerEntry.objects.filter(kind=LedgerKind.CHARGE)
    assert sorted(charges.values_list("task_id", flat=True)) == queued
    assert quota.balance_of(user.pk) == 1_000 - LYRICS_PRICE * len(queued)
    assert set(TaskEvent.objects.values_list("actor", flat=True)) == {"user:alice"}


def test_batch_start_query_queues_every_item_as_on_a_single_create(api, user):
    items = [{"task_type": "demo.noop"}, {"task_type": "demo.noop", "start": False}]

    response = api.post(BATCH + "?start=true", items, format="json")

    assert response.status_code == 200
    assert [task["status"] for task in response.json()] == [Status.QUEUED, Status.QUEUED]
    assert Task.objects.filter(status=Status.QUEUED).count() == 2
    assert DBTaskResult.objects.count() == 2
    # Without it, each item's own `start` decides, as before.
    response = api.post(BATCH, [{"task_type": "demo.noop"}], format="json")
    assert response.json()[0]["status"] == Status.PENDING


def test_batch_with_an_unreadable_start_query_is_400_and_creates_nothing(api, user):
    before = state()

    response = api.post(BATCH + "?start=maybe", [{"task_type": "demo.noop"}], format="json")

    assert response.status_code == 400
    assert "start" in str(response.json())
    assert state() == before


def test_batch_names_every_refused_item_and_creates_nothing(api, user):
    before = state()
    items = [
        {"task_type": "demo.noop"},
        {"task_type": "USER_LIKES"},
        {"task_type": "demo.noop"},
        {"task_type": "USER_INFO", "parameters": {"username": ""}},
    ]

    response = api.post(BATCH, items, format="json")

    assert response.status_code == 422
    refused = [(error["type"], error["loc"]) for error in response.json()["detail"]]
    assert refused == [
        ("enum", ["body", 1, "task_type"]),
        ("string_too_short", ["body", 3, "parameters", "username"]),
    ]
    assert state() == before


def test_batch_the_owner_cannot_pay_for_is_402_and_creates_nothing(api, user):
    quota.grant(user.pk, 3 * LYRICS_PRICE - 1, note="tests")
    before = state()

    response = api.post(BATCH, [LYRICS, {"task_type": "demo.noop"}, LYRICS, LYRICS], format="json")

    assert response.status_code == 402
    assert response.json() == {
        "detail": f"Insufficient quota: these 3 tasks cost {3 * LYRICS_PRICE}, "
        f"the balance is {3 * LYRICS_PRICE - 1}",
        "needed": 3 * LYRICS_PRICE,
        "balance": 3 * LYRICS_PRICE - 1,
    }
    assert state() == before


def test_batch_from_staff_charges_each_owner_for_their_own_tasks(staff_api, user, other_user):
    quota.grant(user.pk, 50, note="tests")
    quota.grant(other_user.pk, 50, note="tests")
    items = [
        {**LYRICS, "user_id": "alice"},
        {**LYRICS, "user_id": "bob"},
        {**LYRICS, "user_id": "bob"},
    ]

    response = staff_api.post(BATCH, items, format="json")

    assert response.status_code == 200, response.json()
    assert [row["owner"] for row in response.json()] == ["alice", "bob", "bob"]
    assert quota.balance_of(user.pk) == 50 - LYRICS_PRICE
    assert quota.balance_of(other_user.pk) == 50 - 2 * LYRICS_PRICE
    assert set(TaskEvent.objects.values_list("actor", flat=True)) == {"user:operator"}


@pytest.mark.parametrize("zone", ["UTC", "Asia/Shanghai"])
def test_task_serializer_answers_as_drfs_own_loop_would(user, make_task, zone):
    quota.grant(user.pk, 100, note="tests")
    lifecycle.create_tasks(
        [LYRICS, {"task_type": "demo.noop", "run_after": timezone.now(), "start": True}],
        owner=user,
    )
    for status in (Status.COMPLETED, Status.FAILED, Status.RUNNING):
        attempt_in(status, make_task)
    rows = list(Task.objects.select_related("owner").order_by("pk"))

    with timezone.override(zone):
        ours = TaskSerializer(rows, many=True).data
        # DRF's own loop over the same fields, each read through get_attribute.
        generic = [ModelSerializer.to_representation(TaskSerializer(), row) for row in rows]

    assert [dict(row) for row in ours] == generic
    assert any(row["finished_at"] for row in ours)
    assert ours[0]["created_at"].endswith("Z") == (zone == "UTC")


def test_task_serializer_fields_are_the_ones_drf_builds():
    ours = TaskSerializer().fields
    built = ModelSerializer.get_fields(TaskSerializer())

    assert list(ours) == list(built)
    assert [repr(field) for field in ours.values()] == [repr(field) for field in built.values()]
    assert all(field.parent is not None for field in ours.values())
    # Each instance has fields of its own (DRF binds them to their serializer).
    assert TaskSerializer().fields["status"] is not ours["status"]
