"""Quota: charged at create, refunded once on FAILED/CANCELLED, re-charged on retry, ledgered.

Through the lifecycle, the canonical API (402), the admin and the ``grant_quota`` command; the
database is checked after each step, including that every balance equals the sum of its ledger.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Sum
from django.urls import reverse

from quota import ledger as quota
from quota.models import LedgerKind, QuotaBalance, QuotaLedgerEntry
from taskcenter import lifecycle
from taskcenter.errors import InsufficientQuota
from taskcenter.models import (
    Status,
    Task,
    TaskEvent,
)
from tests.support.lifecycle import WORKER, attempt_in, later


def ledger_sum(user_id: int) -> int:
    return QuotaLedgerEntry.objects.filter(user_id=user_id).aggregate(s=Sum("amount"))["s"] or 0


def assert_books_balance(user_id: int) -> None:
    assert quota.balance_of(user_id) == ledger_sum(user_id)


def test_create_charges_the_owner_and_writes_a_ledger_row(make_task, user):
    quota.grant(user.pk, 50)

    task = make_task(quota=20)

    assert quota.balance_of(user.pk) == 30
    (charge,) = QuotaLedgerEntry.objects.filter(task=task)
    assert (charge.kind, charge.amount, charge.balance_after) == (LedgerKind.CHARGE, -20, 30)
    assert charge.user == user
    assert_books_balance(user.pk)


def test_create_without_enough_quota_is_refused_and_writes_nothing(make_task, user):
    quota.grant(user.pk, 5)

    with pytest.raises(InsufficientQuota) as refused:
        make_task(quota=6, start=True)

    assert (refused.value.needed, refused.value.balance) == (6, 5)
    assert "costs 6" in str(refused.value)
    assert not Task.objects.exists()
    assert not TaskEvent.objects.exists()
    assert quota.balance_of(user.pk) == 5
    assert list(QuotaLedgerEntry.objects.values_list("kind", flat=True)) == [LedgerKind.GRANT]


def test_a_user_without_an_account_opens_with_the_configured_balance(make_task, user, settings):
    settings.TASKCENTER = {**settings.TASKCENTER, "QUOTA_DEFAULT_BALANCE": 100}

    make_task(quota=40)

    account = QuotaBalance.objects.get(user=user)
    assert account.balance == 60
    kinds = list(QuotaLedgerEntry.objects.order_by("id").values_list("kind", "amount"))
    assert kinds == [(LedgerKind.GRANT, 100), (LedgerKind.CHARGE, -40)]


def test_the_default_opening_balance_is_zero(make_task, user):
    assert quota.balance_of(user.pk) == 0
    with pytest.raises(InsufficientQuota):
        make_task(quota=1)
    assert not QuotaLedgerEntry.objects.exists()
    assert make_task().quota == 0, "a free task needs no balance"


def test_final_failure_refunds_once_and_names_the_charge(make_task, user):
    quota.grant(user.pk, 10)
    task, execution = attempt_in(Status.RUNNING, make_task, quota=10, max_attempts=1)

    failed = lifecycle.fail_attempt(execution, error="platform said no")

    assert failed.status == Status.FAILED
    assert failed.quota_refunded_at == failed.finished_at
    refund = QuotaLedgerEntry.objects.get(task=task, kind=LedgerKind.REFUND)
    charge = QuotaLedgerEntry.objects.get(task=task, kind=LedgerKind.CHARGE)
    assert (refund.amount, refund.balance_after, refund.refund_of) == (10, 10, charge)
    assert quota.balance_of(user.pk) == 10


def test_a_retryable_failure_keeps_the_charge(make_task, user):
    quota.grant(user.pk, 10)
    _, execution = attempt_in(Status.RUNNING, make_task, quota=10, max_attempts=3)

    requeued = lifecycle.fail_attempt(execution, error="timeout")

    assert requeued.status == Status.QUEUED
    assert requeued.quota_refunded_at is None
    assert quota.balance_of(user.pk) == 0


def test_completion_keeps_the_charge(make_task, user):
    quota.grant(user.pk, 10)
    _, execution = attempt_in(Status.RUNNING, make_task, quota=10)

    lifecycle.complete_attempt(execution, result={"ok": True})

    assert quota.balance_of(user.pk) == 0
    assert not QuotaLedgerEntry.objects.filter(kind=LedgerKind.REFUND).exists()


def test_the_reaper_failing_a_task_past_its_lost_limit_refunds_it(make_task, user, settings):
    settings.TASKCENTER = {**settings.TASKCENTER, "MAX_LOST_ATTEMPTS": 0}
    quota.grant(user.pk, 7)
    task, _ = attempt_in(Status.RUNNING, make_task, quota=7, max_attempts=1)

    report = lifecycle.reap_lost_attempts(now=later())

    assert report.failed == 1
    assert Task.objects.get(pk=task.pk).status == Status.FAILED
    assert quota.balance_of(user.pk) == 7
    refund = QuotaLedgerEntry.objects.get(task=task, kind=LedgerKind.REFUND)
    assert refund.note == "failed: worker lost"


def test_deleting_an_unfinished_task_gives_its_quota_back(make_task, user):
    quota.grant(user.pk, 9)
    task = make_task(quota=9)

    lifecycle.delete_task(task)

    assert quota.balance_of(user.pk) == 9
    # The ledger outlives the task: both rows stay, no longer linked to it.
    rows = list(QuotaLedgerEntry.objects.order_by("id").values_list("kind", "task_id"))
    assert rows == [(LedgerKind.GRANT, None), (LedgerKind.CHARGE, None), (LedgerKind.REFUND, None)]
    assert_books_balance(user.pk)


def test_stop_and_start_again_neither_refund_nor_charge(make_task, user):
    quota.grant(user.pk, 4)
    task = make_task(quota=4, start=True)

    lifecycle.start_task(lifecycle.stop_task(task))
    lifecycle.retry_task(lifecycle.stop_task(task))

    assert quota.balance_of(user.pk) == 0
    assert QuotaLedgerEntry.objects.filter(kind=LedgerKind.CHARGE).count() == 1


def test_retry_of_a_refunded_task_without_enough_quota_is_402_and_changes_nothing(
    api, make_task, user
):
    quota.grant(user.pk, 8)
    task = lifecycle.cancel_task(make_task(quota=8))
    quota.grant(user.pk, -5, note="taken back")

    response = api.post(f"/api/v1/tasks/{task.pk}/retry")

    assert response.status_code == 402, response.content
    assert response.json()["needed"] == 8
    assert response.json()["balance"] == 3
    assert "Insufficient quota" in response.json()["detail"]
    task.refresh_from_db()
    assert task.status == Status.CANCELLED
    assert task.quota_refunded_at is not None
    assert quota.balance_of(user.pk) == 3
    assert QuotaLedgerEntry.objects.filter(kind=LedgerKind.CHARGE).count() == 1


def test_retry_of_a_refunded_task_charges_again_through_the_api(api, make_task, user):
    quota.grant(user.pk, 8)
    task = lifecycle.cancel_task(make_task(quota=8))

    response = api.post(f"/api/v1/tasks/{task.pk}/retry")

    assert response.status_code == 200, response.content
    task.refresh_from_db()
    assert (task.status, task.quota_refunded_at) == (Status.QUEUED, None)
    assert quota.balance_of(user.pk) == 0
    assert QuotaLedgerEntry.objects.filter(kind=LedgerKind.CHARGE).count() == 2
    assert_books_balance(user.pk)


def test_admin_bulk_retry_counts_a_short_balance_as_refused(client, staff_user, make_task, user):
    quota.grant(user.pk, 3)
    task = lifecycle.cancel_task(make_task(quota=3))
    quota.grant(user.pk, -3)
    client.force_login(staff_user)

    response = client.post(
        reverse("admin:taskcenter_task_changelist"),
        {"action": "retried_selected", "_selected_action": [task.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "Refused for 1 task(s)" in response.content.decode()
    assert Task.objects.get(pk=task.pk).status == Status.CANCELLED


def test_grant_quota_command_adds_and_tops_up(user, capsys):
    call_command("grant_quota", "alice", "30", "--note", "welcome")
    call_command("grant_quota", "alice", "50", "--at-least")
    call_command("grant_quota", "alice", "10", "--at-least")

    assert quota.balance_of(user.pk) == 50
    grants = list(QuotaLedgerEntry.objects.order_by("id").values_list("amount", "note"))
    assert grants == [(30, "command:grant_quota - welcome"), (20, "command:grant_quota")]
    assert "balance 50 (unchanged)" in capsys.readouterr().out


def test_grant_quota_command_refuses_an_overdraft_and_unknown_users(user):
    call_command("grant_quota", "alice", "5")
    with pytest.raises(CommandError, match="balance is only 5"):
        call_command("grant_quota", "alice", "-6")
    with pytest.raises(CommandError, match="No user named"):
        call_command("grant_quota", "nobody", "5")
    assert quota.balance_of(user.pk) == 5
    assert QuotaLedgerEntry.objects.count() == 1


def test_admin_grants_quota_through_the_account_form(client, staff_user, user):
    client.force_login(staff_user)
    add_url = reverse("admin:quota_quotabalance_add")

    response = client.post(add_url, {"user": user.pk, "grant": 250, "note": "trial"})

    assert response.status_code == 302, response.content.decode()[:2000]
    account = QuotaBalance.objects.get(user=user)
    assert account.balance == 250
    change_url = reverse("admin:quota_quotabalance_change", args=[account.pk])
    response = client.post(change_url, {"grant": -50, "note": "correction"})
    assert response.status_code == 302
    response = client.post(change_url, {"grant": -500})
    assert response.status_code == 200
    assert "cannot go below zero" in response.content.decode()
    assert QuotaBalance.objects.get(user=user).balance == 200
    notes = list(QuotaLedgerEntry.objects.order_by("id").values_list("amount", "note"))
    assert notes == [(250, "admin:operator - trial"), (-50, "admin:operator - correction")]


def test_ledger_admin_is_read_only_and_filters_by_kind(client, staff_user, make_task, user):
    quota.grant(user.pk, 10)
    lifecycle.cancel_task(make_task(quota=10))
    client.force_login(staff_user)
    url = reverse("admin:quota_quotaledgerentry_changelist")

    refunds = client.get(url, {"kind": "refund"})
    everything = client.get(url)

    assert refunds.status_code == 200
    assert refunds.context["cl"].result_count == 1
    assert everything.context["cl"].result_count == 3
    assert client.get(reverse("admin:quota_quotaledgerentry_add")).status_code == 403
    entry = QuotaLedgerEntry.objects.first()
    delete_url = reverse("admin:quota_quotaledgerentry_delete", args=[entry.pk])
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    assert QuotaLedgerEntry.objects.count() == 3


def test_claiming_and_running_never_touch_the_balance(make_task, user):
    quota.grant(user.pk, 2)
    task = make_task(quota=2, start=True)
    lifecycle.claim_attempt(task, worker_id=WORKER)
    assert quota.balance_of(user.pk) == 0
    assert QuotaLedgerEntry.objects.filter(task=task).count() == 1
