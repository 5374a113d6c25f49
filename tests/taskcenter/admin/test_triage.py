"""Failure triage: failures grouped by error shape, and retry all / cancel all per group, after
a dry-run count, through the lifecycle."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from taskcenter import lifecycle
from taskcenter.admin.failure_groups import group_failures
from taskcenter.lib.error_fingerprints import fingerprint
from taskcenter.models import EventVerb, Status, Task, TaskEvent
from tests.support.lifecycle import task_in

TRIAGE = reverse("admin:taskcenter_task_triage")
TIMEOUT = "Upload of 'clip-{n}.mp4' to https://cdn.example.com/u/{n} timed out after {n}s"
BANNED = "Account {n} is banned (request 3f2504e0-4f89-11d3-9a0c-0305e82c33{n:02d})"


def failing(make_task, error: str, *, permanent: bool = True, **fields) -> Task:
    """A task whose attempt failed with ``error``: FAILED, or QUEUED again to be retried."""
    task = make_task(start=True, max_attempts=3, **fields)
    _, execution = lifecycle.claim_attempt(task.pk, worker_id="w1")
    return lifecycle.fail_attempt(execution, error=error, permanent=permanent)


def action_url(message: str, action: str) -> str:
    return reverse("admin:taskcenter_task_triage_action", args=[fingerprint(message), action])


def statuses() -> dict[int, str]:
    return dict(Task.objects.values_list("pk", "status"))


@pytest.fixture
def failures(make_task):
    """Three timeouts (two failed, one being retried), two bans, and tasks that are no failure
    of the window: a completed one and a failure of last month."""
    tasks = {
        "timeout_a": failing(make_task, TIMEOUT.format(n=17), platform="douyin", account_id="a1"),
        "timeout_b": failing(make_task, TIMEOUT.format(n=90210), platform="kuaishou"),
        "timeout_retrying": failing(make_task, TIMEOUT.format(n=5), permanent=False),
        "banned_a": failing(make_task, BANNED.format(n=1), account_id="acct-1"),
        "banned_b": failing(make_task, BANNED.format(n=2), account_id="acct-2"),
        "completed": task_in(Status.COMPLETED, make_task),
        "old": failing(make_task, TIMEOUT.format(n=1)),
    }
    Task.objects.filter(pk=tasks["old"].pk).update(
        finished_at=timezone.now() - dt.timedelta(days=40)
    )
    assert tasks["timeout_retrying"].status == Status.QUEUED
    return tasks


def test_messages_differing_only_in_ids_are_one_group(failures):
    triage = group_failures(since=timezone.now() - dt.timedelta(days=7))

    assert [(len(g.failed_ids), len(g.retrying_ids)) for g in triage.groups] == [(2, 1), (2, 0)]
    timeouts, bans = triage.groups
    assert set(timeouts.failed_ids) == {failures["timeout_a"].pk, failures["timeout_b"].pk}
    assert timeouts.retrying_ids == [failures["timeout_retrying"].pk]
    assert timeouts.message == "Upload of <value> to <url> timed out after <n>s"
    assert dict(timeouts.platforms) == {"douyin": 1, "kuaishou": 1, "-": 1}
    assert dict(timeouts.accounts) == {"a1": 1}
    assert dict(timeouts.kinds) == {"demo.noop": 3}
    assert dict(timeouts.owners) == {"alice": 3}
    assert set(bans.failed_ids) == {failures["banned_a"].pk, failures["banned_b"].pk}
    assert dict(bans.accounts) == {"acct-1": 1, "acct-2": 1}
    assert timeouts.first_seen <= timeouts.last_seen
    assert not triage.truncated


def test_triage_page_lists_the_groups_with_their_counts(admin_client, failures):
    response = admin_client.get(TRIAGE)

    assert response.status_code == 200
    groups = response.context["triage"].groups
    assert [g.total for g in groups] == [3, 2]
    html = response.content.decode()
    assert "Upload of &lt;value&gt; to &lt;url&gt; timed out after &lt;n&gt;s" in html
    assert action_url(TIMEOUT.format(n=1), "retry") in html
    assert action_url(TIMEOUT.format(n=1), "cancel") in html
    assert action_url(BANNED.format(n=1), "cancel") not in html  # nothing of it is retrying

    # A 30-day window still leaves last month's failure out; an unknown window is the default.
    assert admin_client.get(TRIAGE, {"window": "30d"}).context["triage"].groups[0].total == 3
    assert admin_client.get(TRIAGE, {"window": "nope"}).context["window"] == "7d"


def test_triage_page_in_chinese_and_japanese(admin_client, failures):
    html = admin_client.get(TRIAGE, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "失败分诊" in html
    assert "全部重试" in html
    html = admin_client.get(TRIAGE, HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert "失敗の振り分け" in html
    assert "すべて再試行" in html


def test_dry_run_shows_the_count_and_changes_nothing(admin_client, failures):
    before = (statuses(), TaskEvent.objects.count())

    response = admin_client.get(action_url(TIMEOUT.format(n=3), "retry"))

    assert response.status_code == 200
    assert "This will retry 2 tasks." in response.content.decode()
    assert (statuses(), TaskEvent.objects.count()) == before

    response = admin_client.get(action_url(TIMEOUT.format(n=3), "cancel"))
    assert "This will cancel 1 task." in response.content.decode()
    assert (statuses(), TaskEvent.objects.count()) == before


def test_retry_all_retries_exactly_the_groups_failed_tasks(admin_client, failures, staff_user):
    before = statuses()

    response = admin_client.post(action_url(TIMEOUT.format(n=3), "retry"), {"window": "7d"})

    assert response.status_code == 302
    assert response["Location"] == f"{TRIAGE}?window=7d"
    retried = {failures["timeout_a"].pk, failures["timeout_b"].pk}
    assert statuses() == {pk: Status.QUEUED if pk in retried else s for pk, s in before.items()}
    for pk in retried:
        event = TaskEvent.objects.filter(task_id=pk).latest("id")
        assert (event.verb, event.actor_user) == (EventVerb.RETRIED, staff_user)
        assert Task.objects.get(pk=pk).error_message == ""
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Retried 2 tasks."]


def test_cancel_all_cancels_exactly_the_groups_retrying_tasks(admin_client, failures):
    before = statuses()

    response = admin_client.post(action_url(TIMEOUT.format(n=3), "cancel"))

    assert response.status_code == 302
    cancelled = failures["timeout_retrying"].pk
    expected = {pk: Status.CANCELLED if pk == cancelled else s for pk, s in before.items()}
    assert statuses() == expected
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Cancelled 1 task."]


def test_a_task_that_moved_on_meanwhile_is_counted_and_left_alone(admin_client, failures):
    lifecycle.retry_task(failures["timeout_a"].pk)  # another operator was quicker

    response = admin_client.post(action_url(TIMEOUT.format(n=3), "retry"))

    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages == ["Retried 1 task."]  # the group is read again: only timeout_b is left
    assert Task.objects.get(pk=failures["timeout_b"].pk).status == Status.QUEUED


def test_unknown_group_or_action_is_404_and_changes_nothing(admin_client, failures):
    before = statuses()

    assert admin_client.post(action_url("never seen", "retry")).status_code == 404
    assert admin_client.post(action_url(TIMEOUT.format(n=3), "delete")).status_code == 404
    assert statuses() == before


def test_staff_who_may_only_view_see_no_buttons_and_cannot_act(client, failures, django_user_model):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("viewer", password="x-pass-123", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_task"))
    client.force_login(viewer)
    before = statuses()

    page = client.get(TRIAGE)
    assert page.status_code == 200
    assert "Retry all" not in page.content.decode()
    assert client.get(action_url(TIMEOUT.format(n=3), "retry")).status_code == 403
    assert client.post(action_url(TIMEOUT.format(n=3), "retry")).status_code == 403
    assert statuses() == before


def test_non_staff_are_sent_to_the_login_and_nothing_changes(client, user, failures):
    client.force_login(user)
    before = statuses()

    response = client.post(action_url(TIMEOUT.format(n=3), "retry"))

    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]
    assert statuses() == before
