"""Quota moved from the core into its own app: a database made before the move keeps every
balance, ledger row and permission grant, and the move can be undone."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType

from tests.support.migrations import migrated_back_to

# Unapplying taskcenter 0012 unapplies quota 0001 too (it depends on it).
BEFORE = [("taskcenter", "0011_hashed_api_tokens")]


@pytest.mark.django_db(transaction=True)
def test_balances_ledger_and_permission_grants_survive_the_move(user, other_user):
    with migrated_back_to(BEFORE) as steps:
        old = steps.old_apps
        Task = old.get_model("taskcenter", "Task")
        OldBalance = old.get_model("taskcenter", "QuotaAccount")
        OldEntry = old.get_model("taskcenter", "QuotaLedgerEntry")
        task = Task.objects.create(owner_id=user.pk, task_type="suno.song", quota=10)
        OldBalance.objects.create(user_id=user.pk, balance=90)
        OldBalance.objects.create(user_id=other_user.pk, balance=5)
        grant = OldEntry.objects.create(
            user_id=user.pk, kind="grant", amount=100, balance_after=100
        )
        charge = OldEntry.objects.create(
            user_id=user.pk, kind="charge", amount=-10, balance_after=90, task_id=task.pk
        )
        refund = OldEntry.objects.create(
            user_id=user.pk, kind="refund", amount=10, balance_after=100, refund_of_id=charge.pk
        )
        # An operator who was allowed to change balances under the old model's permission.
        old_type, _ = ContentType.objects.get_or_create(
            app_label="taskcenter", model="quotaaccount"
        )
        change, _ = Permission.objects.get_or_create(
            content_type=old_type,
            codename="change_quotaaccount",
            defaults={"name": "Can change quota account"},
        )
        other_user.user_permissions.add(change)

        steps.forward()

        from quota.models import QuotaBalance, QuotaLedgerEntry

        assert sorted(QuotaBalance.objects.values_list("user_id", "balance")) == sorted(
            [(user.pk, 90), (other_user.pk, 5)]
        )
        rows = QuotaLedgerEntry.objects.order_by("pk")
        assert [(e.pk, e.kind, e.amount, e.task_id, e.refund_of_id) for e in rows] == [
            (grant.pk, "grant", 100, None, None),
            (charge.pk, "charge", -10, task.pk, None),
            (refund.pk, "refund", 10, None, charge.pk),
        ]
        # New rows continue the old ids, and the database still refuses a second refund.
        assert (
            QuotaLedgerEntry.objects.create(
                user_id=user.pk, kind="grant", amount=1, balance_after=91
            ).pk
            > refund.pk
        )
        moved = Permission.objects.get(pk=change.pk)
        assert (moved.content_type.app_label, moved.codename) == ("quota", "change_quotabalance")
        fresh = type(other_user).objects.get(pk=other_user.pk)
        assert fresh.has_perm("quota.change_quotabalance")

        # And back: the old app label, tables and rows.
        steps.back()
        assert OldBalance.objects.count() == 2
        assert OldEntry.objects.count() == 4
        assert Permission.objects.get(pk=change.pk).codename == "change_quotaaccount"
