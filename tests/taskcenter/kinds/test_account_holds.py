"""One task at a time per platform account: holds, cooldowns, lost holders, races, workers."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from itertools import pairwise

import pytest
from django.utils import timezone

from taskcenter import lifecycle
from taskcenter.kinds.account_holds import Busy, account_state, acquire_account
from taskcenter.models import AccountHold, ExecutionStatus, Status, Task, TaskExecution
from tests.support.lifecycle import LEASE, WORKER, later
from tests.support.processes import wait_for
from tests.support.races import race

ROUNDS = 10


def running(make_task, **fields) -> TaskExecution:
    task = make_task("demo.account", start=True, **fields)
    return lifecycle.claim_attempt(task, worker_id=WORKER, lease=LEASE)[1]


@pytest.mark.django_db
def test_a_free_account_is_taken_and_a_second_task_is_told_who_holds_it(make_task):
    first, second = running(make_task), running(make_task)

    assert acquire_account(first, "acct-1", platform="x") is None
    busy = acquire_account(second, "acct-1", platform="x", wait=2)

    assert isinstance(busy, Busy)
    assert busy.seconds == 2
    assert f"in use by task #{first.task_id}" in busy.reason
    hold = AccountHold.objects.get(platform="x", account_id="acct-1")
    assert hold.execution_id == first.pk
    assert TaskExecution.objects.get(pk=first.pk).account_id == "acct-1"
    assert account_state(hold) == busy.reason


@pytest.mark.django_db
def test_the_holder_may_ask_again_and_other_accounts_and_platforms_are_independent(make_task):
    first, second = running(make_task), running(make_task)

    assert acquire_account(first, "acct-1", platform="x") is None
    assert acquire_account(first, "acct-1", platform="x") is None
    assert acquire_account(second, "acct-2", platform="x") is None
    assert acquire_account(second, "acct-1", platform="y") is None
    assert AccountHold.objects.count() == 3


@pytest.mark.django_db
def test_the_account_frees_when_the_holder_completes(make_task):
    first, second = running(make_task), running(make_task)
    acquire_account(first, "acct-1")

    lifecycle.complete_attempt(first, result={})

    assert acquire_account(second, "acct-1") is None
    assert AccountHold.objects.get(account_id="acct-1").execution_id == second.pk


@pytest.mark.django_db
def test_the_account_rests_for_the_holders_cooldown_after_it_closes(make_task):
    first, second = running(make_task), running(make_task)
    acquire_account(first, "acct-1", cooldown=60)
    lifecycle.fail_attempt(first, error="boom", permanent=True)

    busy = acquire_account(second, "acct-1", wait=5)
    assert busy is not None
    assert "cooling down" in busy.reason
    assert busy.seconds == 5  # never more than the caller's wait

    TaskExecution.objects.filter(pk=first.pk).update(
        completed_at=timezone.now() - timedelta(seconds=61)
    )
    assert acquire_account(second, "acct-1") is None


@pytest.mark.django_db
def test_a_holder_whose_worker_died_frees_the_account_once_reaped(make_task):
    first, second = running(make_task), running(make_task)
    acquire_account(first, "acct-1")
    assert acquire_account(second, "acct-1") is not None
    # Only the first worker died: the second one's heartbeats carry it past the reap.
    TaskExecution.objects.filter(pk=second.pk).update(lease_expires_at=later(10 * LEASE))

    report = lifecycle.reap_lost_attempts(now=later())

    assert report.lost == 1
    assert TaskExecution.objects.get(pk=first.pk).status == ExecutionStatus.LOST
    assert acquire_account(second, "acct-1") is None


@pytest.mark.django_db
def test_a_stopped_or_cancelled_holder_frees_the_account(make_task):
    for account, action in (("acct-s", lifecycle.stop_task), ("acct-c", lifecycle.cancel_task)):
        first, second = running(make_task), running(make_task)
        acquire_account(first, account)
        action(first.task_id)
        assert lifecycle.interrupt_attempt(first) is not None

        assert acquire_account(second, account) is None


@pytest.mark.django_db(transaction=True)
def test_eight_attempts_racing_for_one_account_leave_exactly_one_holder(make_task):
    for round_number in range(ROUNDS):
        account = f"acct-race-{round_number}"
        executions = [running(make_task) for _ in range(8)]

        outcomes = race(*(partial(acquire_account, e, account, platform="p") for e in executions))

        assert all(outcome.ok for outcome in outcomes), [o.error for o in outcomes]
        winners = [e for e, o in zip(executions, outcomes, strict=True) if o.value is None]
        assert len(winners) == 1
        assert AccountHold.objects.get(platform="p", account_id=account).execution_id == (
            winners[0].pk
        )


@pytest.mark.slow
def test_worker_runs_one_task_per_account_at_a_time_with_the_cooldown(start_worker, make_task):
    shared = [
        make_task("demo.account", {"ms": 300, "cooldown": 0.4}, account_id="acct-a", start=True)
        for _ in range(3)
    ]
    other = make_task("demo.account", {"ms": 300}, account_id="acct-b", start=True)
    start_worker("--concurrency", "4")

    wait_for(lambda: Task.objects.filter(status=Status.COMPLETED).count() == 4, timeout=30)

    spans = sorted(
        (task.result["held_from"], task.result["held_to"])
        for task in Task.objects.filter(pk__in=[t.pk for t in shared])
    )
    for (_, previous_end), (next_start, _) in pairwise(spans):
        assert next_start - previous_end >= 0.4, spans  # no overlap, and the rest was kept
    other_span = Task.objects.get(pk=other.pk).result
    # A different account did not wait for the busy one: it ran alongside the first holder.
    assert other_span["held_from"] < spans[0][1]


@pytest.mark.django_db
def test_admin_lists_account_holds_read_only(client, staff_user, make_task):
    execution = running(make_task)
    acquire_account(execution, "acct-admin", platform="douyin")
    client.force_login(staff_user)

    page = client.get("/admin/taskcenter/accounthold/")

    assert page.status_code == 200
    body = page.content.decode()
    assert "douyin:acct-admin" in body
    assert f"in use by task #{execution.task_id}" in body
    assert client.get("/admin/taskcenter/accounthold/add/").status_code == 403
