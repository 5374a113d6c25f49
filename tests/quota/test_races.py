"""The refund-once promise under real concurrency: finalisers racing on their own connections.

Each round charges a task, then releases two (or three) finalisers together; whoever wins,
the task is refunded by exactly one ledger row and the balance is exact.
"""

from __future__ import annotations

from functools import partial

import pytest

from quota import ledger as quota
from quota.models import LedgerKind, QuotaLedgerEntry
from taskcenter import lifecycle
from taskcenter.models import Status, Task
from tests.support.lifecycle import LEASE, WORKER, later
from tests.support.races import ROUNDS, race

pytestmark = pytest.mark.django_db(transaction=True)

PRICE = 7


def charged_running_task(make_task, **fields):
    task = make_task(start=True, quota=PRICE, **fields)
    return lifecycle.claim_attempt(task, worker_id=WORKER, lease=LEASE)


def assert_refunded_once(task_id: int, owner_id: int, expected_balance: int) -> None:
    refunds = QuotaLedgerEntry.objects.filter(task_id=task_id, kind=LedgerKind.REFUND)
    assert refunds.count() == 1
    assert refunds.get().amount == PRICE
    assert quota.balance_of(owner_id) == expected_balance


def test_cancel_racing_final_failure_refunds_exactly_once(make_task, user):
    quota.grant(user.pk, PRICE * ROUNDS)
    for round_no in range(ROUNDS):
        task, execution = charged_running_task(make_task, max_attempts=1)

        cancel, fail = race(
            partial(lifecycle.cancel_task, task.pk),
            partial(lifecycle.fail_attempt, execution, error="platform failure"),
        )

        assert cancel.ok != fail.ok, "one finaliser wins, the other is refused"
        task.refresh_from_db()
        assert task.status == (Status.CANCELLED if cancel.ok else Status.FAILED)
        assert task.quota_refunded_at is not None
        # Every earlier round was refunded too, so the whole grant is back each time.
        assert_refunded_once(task.pk, user.pk, PRICE * ROUNDS)
        assert QuotaLedgerEntry.objects.filter(kind=LedgerKind.REFUND).count() == round_no + 1


def test_cancel_racing_the_reaper_failing_a_task_refunds_exactly_once(make_task, user, settings):
    settings.TASKCENTER = {**settings.TASKCENTER, "MAX_LOST_ATTEMPTS": 0}  # one loss fails it
    quota.grant(user.pk, PRICE)
    for _ in range(ROUNDS):
        task, _ = charged_running_task(make_task, max_attempts=1)

        race(
            partial(lifecycle.cancel_task, task.pk),
            partial(lifecycle.reap_lost_attempts, now=later()),
            partial(lifecycle.cancel_task, task.pk),
        )

        task.refresh_from_db()
        assert task.status in (Status.CANCELLED, Status.FAILED)
        assert_refunded_once(task.pk, user.pk, PRICE)


def test_concurrent_creates_never_overdraw_the_balance(make_task, user):
    for _ in range(ROUNDS // 2):
        before = quota.balance_of(user.pk)
        quota.grant(user.pk, PRICE * 2 - before)  # room for exactly two of the three

        outcomes = race(*(partial(make_task, quota=PRICE) for _ in range(3)))

        assert sum(o.ok for o in outcomes) == 2
        (refused,) = [o for o in outcomes if not o.ok]
        assert "Insufficient quota" in str(refused.error)
        assert quota.balance_of(user.pk) == 0
    charged = QuotaLedgerEntry.objects.filter(kind=LedgerKind.CHARGE).count()
    assert charged == Task.objects.count() == ROUNDS
