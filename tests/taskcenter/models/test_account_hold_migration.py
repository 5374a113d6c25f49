"""Account holds made before holds had owners get their holder's owner when the app migrates."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.support.migrations import migrated_back_to

BEFORE = [("taskcenter", "0007_task_lost_attempts")]


@pytest.mark.django_db(transaction=True)
def test_holds_are_given_their_holders_owner_and_unattributable_ones_dropped(user, other_user):
    with migrated_back_to(BEFORE) as steps:
        old = steps.old_apps
        Task = old.get_model("taskcenter", "Task")
        TaskExecution = old.get_model("taskcenter", "TaskExecution")
        AccountHold = old.get_model("taskcenter", "AccountHold")
        now = timezone.now()

        def execution(owner_id: int, status: str) -> int:
            task = Task.objects.create(owner_id=owner_id, task_type="demo.account")
            return TaskExecution.objects.create(
                task=task, attempt=1, status=status, started_at=now
            ).pk

        running = execution(user.pk, "RUNNING")
        resting = execution(other_user.pk, "COMPLETED")
        held = AccountHold.objects.create(platform="x", account_id="a", execution_id=running)
        cooling = AccountHold.objects.create(
            platform="x", account_id="b", execution_id=resting, cooldown=30.0
        )
        orphan = AccountHold.objects.create(
            platform="x", account_id="c", released_at=now - timedelta(seconds=1), cooldown=5.0
        )

        steps.forward()

        from taskcenter.models import AccountHold as Hold

        assert sorted(Hold.objects.values_list("pk", "owner_id", "execution_id")) == [
            (held.pk, user.pk, running),
            (cooling.pk, other_user.pk, resting),
        ]
        assert not Hold.objects.filter(pk=orphan.pk).exists()
        # The new key: the same account id may now be held once per owner.
        Hold.objects.create(owner=user, platform="x", account_id="b")

        # Going back keeps one hold per account, so the old key can return.
        steps.back()
        assert AccountHold.objects.filter(platform="x", account_id="b").count() == 1
        assert AccountHold.objects.count() == 2
