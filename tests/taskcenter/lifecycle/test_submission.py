"""``create_tasks``: many tasks in one transaction, written exactly as ``create_task`` writes one.

Every test reads the database afterwards: tasks, their ``created`` events, engine jobs, the
owners' balances and ledger rows, the idempotency keys, and the statistics tallies through
``rebuild_tallies --check``.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tasks_db.models import DBTaskResult, get_date_max
from rest_framework.exceptions import ValidationError

from quota import ledger as quota
from quota.models import LedgerKind, QuotaLedgerEntry
from taskcenter import lifecycle
from taskcenter.errors import InsufficientQuota, InvalidTransition
from taskcenter.execution.dispatch import RUN_ATTEMPT_PATH
from taskcenter.models import EventVerb, IdempotencyKey, Status, Task, TaskEvent
from tests.support.lifecycle import LEASE, WORKER
from tests.support.races import ROUNDS, race
from tests.support.submission import assert_tallies_exact, database

pytestmark = pytest.mark.django_db

PRICE = 3


def items(count: int, **fields) -> list[dict]:
    """``count`` items of three kinds: free without parameters, priced, and checked ones."""
    shapes = [
        {"task_type": "demo.noop", "quota": PRICE},
        {"task_type": "demo.countdown", "parameters": {"seconds": 5}},
        {"task_type": "USER_INFO", "parameters": {"username": "someone"}},
    ]
    return [{**shapes[i % 3], "name": f"item {i}", **fields} for i in range(count)]


def job_args(task_id: int) -> list[DBTaskResult]:
    return [
        job
        for job in DBTaskResult.objects.filter(task_path=RUN_ATTEMPT_PATH)
        if job.args_kwargs == {"args": [task_id], "kwargs": {}}
    ]


@pytest.fixture
def alice(user):
    quota.grant(user.pk, 1_000, note="tests")
    return user


def test_create_tasks_writes_what_create_task_writes_for_each_item(alice):
    one_by_one = [lifecycle.create_task(owner=alice, start=True, **item) for item in items(3)]
    many = lifecycle.create_tasks(items(3, start=True), owner=alice)

    ignored = {"id", "created_at", "updated_at", "submitted_at"}
    for single, batched in zip(one_by_one, many, strict=True):
        single_row = Task.objects.filter(pk=single.pk).values().get()
        batched_row = Task.objects.filter(pk=batched.pk).values().get()
        assert {k: v for k, v in batched_row.items() if k not in ignored} == {
            k: v for k, v in single_row.items() if k not in ignored
        }
        assert batched_row["submitted_at"] == batched_row["created_at"]
        single_events = list(single.events.values("verb", "from_status", "to_status", "actor"))
        assert list(batched.events.values("verb", "from_status", "to_status", "actor")) == (
            single_events
        )
        assert [job.priority for job in job_args(batched.pk)] == [0]
    assert_tallies_exact()


def test_a_large_submission_is_exact_row_for_row(alice, other_user):
    # Past the size from which PostgreSQL gets COPY instead of INSERT, for every table.
    quota.grant(other_user.pk, 1_000, note="tests")
    batch = [{**item, "owner": alice if n % 2 else other_user} for n, item in enumerate(items(360))]
    batch = [{**item, "start": n % 5 != 0} for n, item in enumerate(batch)]

    created = lifecycle.create_tasks(batch)

    assert Task.objects.count() == 360
    assert [task.pk for task in created] == sorted(task.pk for task in created)
    for task, item in zip(created, batch, strict=True):
        assert (task.owner, task.name, task.task_type) == (
            item["owner"],
            item["name"],
            item["task_type"],
        )
    queued = [task for task in created if task.status == Status.QUEUED]
    assert len(queued) == 288
    jobs = DBTaskResult.objects.filter(task_path=RUN_ATTEMPT_PATH)
    assert sorted(job.args_kwargs["args"][0] for job in jobs) == [task.pk for task in queued]
    created_events = TaskEvent.objects.filter(verb=EventVerb.CREATED)
    assert sorted(created_events.values_list("task_id", flat=True)) == [t.pk for t in created]
    for owner in (alice, other_user):
        charged = [t.pk for t in created if t.owner == owner and t.quota]
        entries = QuotaLedgerEntry.objects.filter(user=owner, kind=LedgerKind.CHARGE)
        assert sorted(entries.values_list("task_id", flat=True)) == charged
        assert quota.balance_of(owner.pk) == 1_000 - PRICE * len(charged)
        assert entries.order_by("task_id").last().balance_after == quota.balance_of(owner.pk)
    assert_tallies_exact()


def test_create_tasks_returns_the_rows_as_a_query_reads_them(alice):
    created = lifecycle.create_tasks(items(6, start=True), owner=alice)

    assert [task.name for task in created] == [f"item {i}" for i in range(6)]
    for task in created:
        fresh = Task.objects.get(pk=task.pk)
        assert model_to_dict(task) == model_to_dict(fresh)
        assert (task.created_at, task.submitted_at) == (fresh.created_at, fresh.submitted_at)
        assert task.owner == alice
        assert not task._state.adding


def test_create_tasks_charges_each_priced_task_once_in_one_update_per_owner(
    alice, other_user, django_assert_max_num_queries
):
    quota.grant(other_user.pk, 1_000, note="tests")
    batch = [{**item, "owner": alice} for item in items(30)]
    batch += [{**item, "owner": other_user} for item in items(12)]

    with django_assert_max_num_queries(12):
        created = lifecycle.create_tasks(batch)

    for owner, priced in ((alice, 10), (other_user, 4)):
        charges = QuotaLedgerEntry.objects.filter(user=owner, kind=LedgerKind.CHARGE)
        assert charges.count() == priced
        assert quota.balance_of(owner.pk) == 1_000 - PRICE * priced
        # As if charged one after the other, in the order given.
        afters = list(charges.order_by("task_id").values_list("balance_after", flat=True))
        assert afters == [1_000 - PRICE * n for n in range(1, priced + 1)]
    mine = [task for task in created if task.owner == alice and task.quota]
    assert {entry.task_id for entry in QuotaLedgerEntry.objects.filter(user=alice)} >= {
        task.pk for task in mine
    }
    assert all(task.quota == PRICE for task in mine)
    assert_tallies_exact()


def test_create_tasks_charges_are_refunded_task_by_task_exactly_once(alice):
    created = lifecycle.create_tasks(items(9, start=True), owner=alice)
    priced = [task for task in created if task.quota]
    assert quota.balance_of(alice.pk) == 1_000 - PRICE * 3

    lifecycle.cancel_task(priced[0])
    _, execution = lifecycle.claim_attempt(priced[1], worker_id=WORKER, lease=LEASE)
    lifecycle.fail_attempt(execution, error="boom", permanent=True)
    with pytest.raises(InvalidTransition):
        lifecycle.cancel_task(priced[0])

    assert quota.balance_of(alice.pk) == 1_000 - PRICE
    for task in priced[:2]:
        refund = QuotaLedgerEntry.objects.get(task=task, kind=LedgerKind.REFUND)
        assert refund.amount == PRICE
        assert refund.refund_of == QuotaLedgerEntry.objects.get(task=task, kind=LedgerKind.CHARGE)
    assert not QuotaLedgerEntry.objects.filter(task=priced[2], kind=LedgerKind.REFUND).exists()
    assert_tallies_exact()


def test_create_tasks_writes_a_created_event_per_task_naming_the_actor(alice, staff_user):
    created = lifecycle.create_tasks(
        [*items(2), *items(2, start=True)], owner=alice, actor=staff_user
    )

    for task, status in zip(created, [Status.PENDING] * 2 + [Status.QUEUED] * 2, strict=True):
        [event] = TaskEvent.objects.filter(task=task)
        assert (event.verb, event.from_status, event.to_status) == (
            EventVerb.CREATED,
            "",
            status,
        )
        assert (event.actor, event.actor_user) == ("user:operator", staff_user)
        assert event.at == task.created_at


def test_create_tasks_hands_the_queued_ones_to_the_engine_with_their_priority_and_time(
    alice, capture
):
    later = timezone.now() + timedelta(hours=1)
    with capture(execute=False) as callbacks:
        first, second, third = lifecycle.create_tasks(
            [
                {"task_type": "demo.noop", "start": True, "priority": 100},
                {"task_type": "demo.noop", "start": True, "run_after": later, "priority": -7},
                {"task_type": "demo.noop"},
            ],
            owner=alice,
        )

    assert callbacks == []  # the jobs are rows of this database, written in the transaction
    [job] = job_args(first.pk)
    assert (job.status, job.priority, job.run_after) == ("READY", 100, get_date_max())
    assert (job.queue_name, job.backend_name) == ("default", "default")
    [job] = job_args(second.pk)
    assert (job.priority, job.run_after) == (-7, later)
    assert job_args(third.pk) == []
    assert (first.status, second.status, third.status) == (
        Status.QUEUED,
        Status.QUEUED,
        Status.PENDING,
    )


def test_create_tasks_refuses_every_bad_item_by_position_and_writes_nothing(alice):
    before = database()
    batch = items(5, start=True)
    batch[1] = {"task_type": "no.such.kind"}
    batch[3] = {"task_type": "demo.countdown", "parameters": {"seconds": 0}}
    batch[4] = {"task_type": "USER_INFO", "parameters": "not an object"}

    with pytest.raises(ValidationError) as refused:
        lifecycle.create_tasks(batch, owner=alice)

    detail = refused.value.detail
    assert set(detail) == {1, 3, 4}
    assert detail[1]["task_type"][0].code == "unknown_kind"
    assert "seconds" in detail[3]["parameters"]
    assert detail[4] == {"parameters": ["Must be a JSON object."]}
    assert database() == before


def test_create_tasks_that_an_owner_cannot_pay_for_writes_nothing_for_anyone(alice, other_user):
    quota.grant(other_user.pk, 2 * PRICE - 1, note="tests")
    before = database()
    batch = [{**item, "owner": alice} for item in items(6)]
    batch += [{**item, "owner": other_user} for item in items(6)]

    with pytest.raises(InsufficientQuota) as refused:
        lifecycle.create_tasks(batch)

    assert (refused.value.needed, refused.value.balance) == (2 * PRICE, 2 * PRICE - 1)
    assert str(refused.value) == (
        f"Insufficient quota: these 2 tasks cost {2 * PRICE}, the balance is {2 * PRICE - 1}"
    )
    assert database() == before


def test_create_tasks_of_nothing_writes_nothing(alice):
    before = database()
    assert lifecycle.create_tasks([], owner=alice) == []
    assert database() == before


def test_create_tasks_without_an_owner_or_with_an_unknown_field_is_a_programming_error(alice):
    with pytest.raises(TypeError, match="owner"):
        lifecycle.create_tasks([{"task_type": "demo.noop"}])
    with pytest.raises(TypeError, match="status"):
        lifecycle.create_tasks([{"task_type": "demo.noop", "status": "COMPLETED"}], owner=alice)
    assert not Task.objects.exists()


# --- idempotency keys ----------------------------------------------------------------------


def keyed(count: int, prefix: str = "k") -> list[dict]:
    return [{**item, "idempotency_key": f"{prefix}-{n}"} for n, item in enumerate(items(count))]


def test_create_tasks_replays_keys_it_has_seen_and_writes_nothing_new(alice):
    first = lifecycle.create_tasks(keyed(4), owner=alice)
    before = database()

    again = lifecycle.create_tasks(keyed(4), owner=alice)

    assert [task.pk for task in again] == [task.pk for task in first]
    assert database() == before
    assert IdempotencyKey.objects.count() == 4


def test_create_tasks_mixes_replays_and_new_tasks_in_one_call(alice):
    [old] = lifecycle.create_tasks(keyed(1), owner=alice)

    replay, new, unkeyed = lifecycle.create_tasks(
        [*keyed(2), {"task_type": "demo.noop"}], owner=alice
    )

    assert replay.pk == old.pk
    assert new.pk != old.pk
    assert unkeyed.pk not in (old.pk, new.pk)
    assert Task.objects.count() == 3
    assert set(IdempotencyKey.objects.values_list("key", "task_id")) == {
        ("k-0", old.pk),
        ("k-1", new.pk),
    }
    assert TaskEvent.objects.count() == 3


def test_create_tasks_refuses_a_key_used_for_another_request(alice):
    lifecycle.create_tasks(keyed(2), owner=alice)
    before = database()
    changed = keyed(2)
    changed[1]["name"] = "something else"

    with pytest.raises(ValidationError) as refused:
        lifecycle.create_tasks(changed, owner=alice)

    assert set(refused.value.detail) == {1}
    assert refused.value.detail[1]["idempotency_key"][0].code == "idempotency_key_reused"
    assert database() == before


def test_create_tasks_reads_one_key_twice_in_a_call_as_one_request_sent_twice(alice):
    item = {"task_type": "demo.noop", "idempotency_key": "twice", "start": True}

    first, second = lifecycle.create_tasks([item, item], owner=alice)

    assert first.pk == second.pk
    assert Task.objects.count() == 1
    assert len(job_args(first.pk)) == 1
    with pytest.raises(ValidationError):
        lifecycle.create_tasks(
            [
                {**item, "idempotency_key": "other"},
                {**item, "idempotency_key": "other", "priority": 5},
            ],
            owner=alice,
        )


def test_create_tasks_keys_belong_to_the_acting_user(alice, other_user, staff_user):
    quota.grant(other_user.pk, 1_000, note="tests")
    item = {"task_type": "demo.noop", "idempotency_key": "shared"}

    for_alice = lifecycle.create_tasks([{**item, "owner": alice}], actor=staff_user)
    for_bob = lifecycle.create_tasks([{**item, "owner": alice}], actor=other_user)

    assert for_alice[0].pk != for_bob[0].pk
    assert set(IdempotencyKey.objects.values_list("owner_id", flat=True)) == {
        staff_user.pk,
        other_user.pk,
    }


def test_create_tasks_makes_a_new_task_for_an_expired_key(alice, settings):
    [old] = lifecycle.create_tasks(keyed(1), owner=alice)
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(days=2))

    [new] = lifecycle.create_tasks(keyed(1), owner=alice)

    assert new.pk != old.pk
    assert list(IdempotencyKey.objects.values_list("task_id", flat=True)) == [new.pk]


@pytest.mark.django_db(transaction=True)
def test_create_tasks_racing_with_the_same_keys_make_one_set_of_tasks(user):
    quota.grant(user.pk, 10_000, note="tests")
    for round_no in range(ROUNDS // 4):
        batch = keyed(6, prefix=f"r{round_no}")
        first, second = race(
            lambda b=batch: lifecycle.create_tasks(b, owner=user),
            lambda b=batch: lifecycle.create_tasks(b, owner=user),
        )
        assert first.ok
        assert second.ok
        assert [t.pk for t in first.value] == [t.pk for t in second.value]
    assert Task.objects.count() == 6 * (ROUNDS // 4)
    assert QuotaLedgerEntry.objects.filter(kind=LedgerKind.CHARGE).count() == 2 * (ROUNDS // 4)
    assert quota.balance_of(user.pk) == 10_000 - PRICE * 2 * (ROUNDS // 4)
    assert_tallies_exact()


def test_create_tasks_takes_each_items_owner_over_the_default(alice, other_user):
    mine, theirs = lifecycle.create_tasks(
        [{"task_type": "demo.noop"}, {"task_type": "demo.noop", "owner": other_user}], owner=alice
    )
    assert (mine.owner_id, theirs.owner_id) == (alice.pk, other_user.pk)
    assert Task.objects.get(pk=theirs.pk).owner == other_user


# --- durability ------------------------------------------------------------------------------


def submission_statements(call) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        call()
    return [query["sql"] for query in captured.captured_queries]


ASYNC_COMMIT = "SET LOCAL synchronous_commit TO OFF"
# ``create_task``'s one statement on PostgreSQL turns it off for its own transaction.
ASYNC_COMMIT_CLAUSE = "set_config('synchronous_commit', 'off', true)"


def async_commits(statements: list[str]) -> int:
    return sum(sql == ASYNC_COMMIT or ASYNC_COMMIT_CLAUSE in sql for sql in statements)


@pytest.mark.django_db(transaction=True)
def test_a_submission_of_its_own_skips_the_wal_flush_on_postgresql_only_when_asked(user, settings):
    def submit():
        lifecycle.create_task(owner=user, task_type="demo.noop", start=True)

    def submit_inside_the_callers_transaction():
        with transaction.atomic():
            submit()

    durable = submission_statements(submit)
    settings.TASKCENTER = {**settings.TASKCENTER, "ASYNC_SUBMIT": True}
    own = submission_statements(submit)
    nested = submission_statements(submit_inside_the_callers_transaction)

    assert async_commits(durable) == 0
    assert async_commits(own) == (1 if connection.vendor == "postgresql" else 0)
    # The caller's transaction is the caller's to make durable or not.
    assert async_commits(nested) == 0
    assert Task.objects.filter(status=Status.QUEUED).count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_batch_of_its_own_skips_the_wal_flush_on_postgresql_only_when_asked(user, settings):
    def submit():
        lifecycle.create_tasks([{"task_type": "demo.noop", "start": True}] * 2, owner=user)

    durable = submission_statements(submit)
    settings.TASKCENTER = {**settings.TASKCENTER, "ASYNC_SUBMIT": True}
    own = submission_statements(submit)

    assert ASYNC_COMMIT not in durable
    assert own.count(ASYNC_COMMIT) == (1 if connection.vendor == "postgresql" else 0)
    assert Task.objects.filter(status=Status.QUEUED).count() == 4
