"""Account holds belong to the task's owner: another user's tasks on the same account id can
neither delay nor observe them, and no hold rests an account longer than the bound allows."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from taskcenter import lifecycle
from taskcenter.kinds.account_holds import acquire_account
from taskcenter.models import AccountHold, EventVerb, Status, Task, TaskEvent, TaskExecution
from taskcenter.settings import bounded_cooldown
from tests.support.lifecycle import LEASE, WORKER
from tests.support.processes import wait_for

TASKS = "/api/v1/tasks"
ALICES_ACCOUNT = "alice-douyin-7"
HOUR = 3600


def running(owner, account_id: str = ALICES_ACCOUNT, **fields) -> TaskExecution:
    task = lifecycle.create_task(
        owner=owner, task_type="demo.account", account_id=account_id, start=True, **fields
    )
    return lifecycle.claim_attempt(task, worker_id=WORKER, lease=LEASE)[1]


@pytest.mark.django_db
def test_bobs_hold_and_cooldown_on_alices_account_id_do_not_delay_alice(user, other_user):
    bobs = running(other_user, platform="douyin")
    assert acquire_account(bobs, ALICES_ACCOUNT, platform="douyin", cooldown=HOUR) is None

    # While bob's attempt holds "her" account, and after it closed with an hour's rest, alice's
    # tasks take it at once: the id in bob's task names an account of bob's.
    alices = running(user, platform="douyin")
    assert acquire_account(alices, ALICES_ACCOUNT, platform="douyin") is None
    lifecycle.complete_attempt(bobs, result={})
    lifecycle.complete_attempt(alices, result={})
    later = running(user, platform="douyin")
    assert acquire_account(later, ALICES_ACCOUNT, platform="douyin") is None

    holds = AccountHold.objects.filter(platform="douyin", account_id=ALICES_ACCOUNT)
    assert sorted(holds.values_list("owner__username", "execution_id", "cooldown")) == [
        ("alice", later.pk, 0.0),
        ("bob", bobs.pk, HOUR),
    ]


@pytest.mark.django_db
def test_the_same_owners_tasks_still_take_turns_and_rest(user):
    first, second = running(user), running(user)
    assert acquire_account(first, ALICES_ACCOUNT, cooldown=60) is None

    busy = acquire_account(second, ALICES_ACCOUNT, wait=1)
    assert busy is not None
    assert f"in use by task #{first.task_id}" in busy.reason  # her own task: she may know
    lifecycle.complete_attempt(first, result={})
    busy = acquire_account(second, ALICES_ACCOUNT, wait=1)
    assert busy is not None
    assert "cooling down" in busy.reason


@pytest.mark.django_db
def test_bob_never_learns_alices_task_ids_from_a_hold(user, other_user):
    alices = running(user)
    assert acquire_account(alices, ALICES_ACCOUNT) is None
    bobs_first, bobs_second = running(other_user), running(other_user)

    assert acquire_account(bobs_first, ALICES_ACCOUNT, cooldown=HOUR) is None
    busy = acquire_account(bobs_second, ALICES_ACCOUNT)

    # Bob is told only about his own task, never that alice's task uses the account.
    assert busy is not None
    assert f"#{bobs_first.task_id}" in busy.reason
    assert f"#{alices.task_id}" not in busy.reason


@pytest.mark.slow
def test_worker_runs_alices_task_at_once_after_bobs_hour_long_cooldown_on_her_id(
    user, other_user, start_worker
):
    start_worker("--concurrency", "2")
    bobs = lifecycle.create_task(
        owner=other_user,
        task_type="demo.account",
        parameters={"ms": 0, "cooldown": 600},
        account_id=ALICES_ACCOUNT,
        start=True,
    )
    wait_for(lambda: Task.objects.get(pk=bobs.pk).status == Status.COMPLETED, timeout=60)

    alices = lifecycle.create_task(
        owner=user,
        task_type="demo.account",
        parameters={"ms": 0},
        account_id=ALICES_ACCOUNT,
        start=True,
    )
    bobs_next = lifecycle.create_task(
        owner=other_user,
        task_type="demo.account",
        parameters={"ms": 0},
        account_id=ALICES_ACCOUNT,
        start=True,
    )
    wait_for(lambda: Task.objects.get(pk=alices.pk).status == Status.COMPLETED, timeout=60)
    # Bob's own account rests for his ten minutes; his next task waits for it.
    wait_for(lambda: bobs_next.events.filter(verb=EventVerb.WAITING).exists(), timeout=60)

    # Alice's attempt never waited: bob's rest was not hers.
    assert not TaskEvent.objects.filter(task=alices, verb=EventVerb.WAITING).exists()
    assert Task.objects.get(pk=bobs_next.pk).status == Status.RUNNING
    bobs_words = [Task.objects.get(pk=bobs_next.pk).progress_message] + [
        str(data) for data in bobs_next.events.values_list("data", flat=True)
    ]
    assert "cooling down" in bobs_words[0]
    assert not any(f"#{alices.pk}" in words for words in bobs_words)


@pytest.mark.django_db
def test_demo_account_cooldown_above_its_bound_is_422_naming_cooldown(api):
    response = api.post(
        TASKS,
        {"task_type": "demo.account", "account_id": "a", "parameters": {"cooldown": HOUR}},
        format="json",
    )

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "parameters", "cooldown"]
    assert not Task.objects.exists()
    ok = api.post(
        TASKS,
        {"task_type": "demo.account", "account_id": "a", "parameters": {"cooldown": 600}},
        format="json",
    )
    assert ok.status_code == 201, ok.content


@pytest.mark.django_db
def test_a_handlers_cooldown_is_cut_to_the_configured_maximum(user, settings):
    settings.TASKCENTER = {**settings.TASKCENTER, "ACCOUNT_COOLDOWN_MAX_SECONDS": 90.0}
    execution = running(user)

    assert acquire_account(execution, ALICES_ACCOUNT, cooldown=10 * HOUR) is None

    assert AccountHold.objects.get(account_id=ALICES_ACCOUNT).cooldown == 90.0


def test_operator_cooldowns_outside_the_bound_refuse_to_start(monkeypatch):
    monkeypatch.setenv("PUBLISHING_ACCOUNT_COOLDOWN_SECONDS", "90000")
    with pytest.raises(ImproperlyConfigured, match="PUBLISHING_ACCOUNT_COOLDOWN_SECONDS"):
        bounded_cooldown("PUBLISHING_ACCOUNT_COOLDOWN_SECONDS", 30.0)
    monkeypatch.setenv("SCRAPING_ACCOUNT_COOLDOWN", "-1")
    with pytest.raises(ImproperlyConfigured, match="SCRAPING_ACCOUNT_COOLDOWN"):
        bounded_cooldown("SCRAPING_ACCOUNT_COOLDOWN", 0.0)
    monkeypatch.setenv("SCRAPING_ACCOUNT_COOLDOWN", "86400")
    assert bounded_cooldown("SCRAPING_ACCOUNT_COOLDOWN", 0.0) == 86400.0


@pytest.mark.django_db
def test_admin_shows_each_holds_owner(client, staff_user, user, other_user):
    for owner in (user, other_user):
        acquire_account(running(owner, "shared-7"), "shared-7", platform="douyin")
    client.force_login(staff_user)

    page = client.get("/admin/taskcenter/accounthold/")

    assert page.status_code == 200
    body = page.content.decode()
    assert body.count("douyin:shared-7") == 2
    assert "alice" in body
    assert "bob" in body
