"""The Workers and Queues pages of the console: states, the dead worker's red badge, its lost
attempts linked to the task list, queue depth; in English, Chinese and Japanese."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from taskcenter import lifecycle
from taskcenter.models import TaskExecution
from taskcenter.models import WorkerProcess as WorkerRow

pytestmark = pytest.mark.django_db


def worker(name: str, *, silent: float = 0, stopped: bool = False) -> WorkerRow:
    now = timezone.now()
    return WorkerRow.objects.create(
        name=name,
        host="box",
        pid=42,
        engine="database",
        queues=["default"],
        concurrency=4,
        started_at=now - timedelta(seconds=silent + 60),
        last_seen_at=now - timedelta(seconds=silent),
        stopped_at=now - timedelta(seconds=silent) if stopped else None,
    )


def lose_attempt_of(row: WorkerRow, make_task):
    task = make_task("demo.noop", start=True)
    _, execution = lifecycle.claim_attempt(task, worker_id=row.name)
    TaskExecution.objects.filter(pk=execution.pk).update(
        started_at=row.last_seen_at - timedelta(seconds=1),
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    assert lifecycle.reap_lost_attempts().lost == 1
    return task


def test_workers_page_marks_the_dead_red_and_links_their_lost_attempts(admin_client, make_task):
    worker("alive-one")
    dead = worker("dead-one", silent=3600)
    worker("stopped-one", silent=10, stopped=True)
    lost_task = lose_attempt_of(dead, make_task)
    other_task = make_task("demo.noop")

    page = admin_client.get(reverse("admin:taskcenter_workerprocess_changelist"))

    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('class="tc-worker-dead" style="background:#dc3545') == 1
    assert html.count('class="tc-worker-alive"') == 1
    assert html.count('class="tc-worker-stopped"') == 1
    link = f"{reverse('admin:taskcenter_task_changelist')}?lost_on_worker={dead.pk}"
    assert link in html

    tasks = admin_client.get(link)
    assert tasks.status_code == 200
    assert [t.pk for t in tasks.context["cl"].result_list] == [lost_task.pk]
    assert other_task.pk != lost_task.pk
    executions = admin_client.get(
        reverse("admin:taskcenter_taskexecution_changelist"), {"lost_on_worker": dead.pk}
    )
    assert [e.task_id for e in executions.context["cl"].result_list] == [lost_task.pk]

    nonsense = admin_client.get(
        reverse("admin:taskcenter_task_changelist"), {"lost_on_worker": "nonsense"}
    )
    assert nonsense.status_code in (200, 302)  # Django's admin: unknown filter value, ?e=1
    only_dead = admin_client.get(
        reverse("admin:taskcenter_workerprocess_changelist"), {"state": "dead"}
    )
    assert [w.name for w in only_dead.context["cl"].result_list] == ["dead-one"]


def test_workers_page_is_read_only(admin_client):
    row = worker("w")

    assert admin_client.get(reverse("admin:taskcenter_workerprocess_add")).status_code == 403
    change = admin_client.post(
        reverse("admin:taskcenter_workerprocess_change", args=[row.pk]), {"name": "x"}
    )
    assert change.status_code == 403
    assert WorkerRow.objects.get(pk=row.pk).name == "w"


@pytest.mark.parametrize(
    ("language", "workers_words", "queues_words"),
    [
        (
            "en",
            ["dead", "Busy slots", "Poll-again re-dispatches"],
            ["Queue depth", "a busy account"],
        ),
        ("zh-Hans", ["已失联", "占用槽位", "轮询重新派发"], ["队列深度", "忙碌的账号"]),
        (
            "ja",
            ["停止応答", "使用中スロット", "再ポーリングの再投入"],
            ["キューの深さ", "使用中のアカウント"],
        ),
    ],
)
def test_workers_and_queues_pages_are_translated(
    admin_client, make_task, language, workers_words, queues_words
):
    worker("dead-one", silent=3600)
    make_task("demo.noop", platform="x", account_id="acct-7", start=True)

    workers = admin_client.get(
        reverse("admin:taskcenter_workerprocess_changelist"), HTTP_ACCEPT_LANGUAGE=language
    )
    queues = admin_client.get(reverse("admin:taskcenter_queues"), HTTP_ACCEPT_LANGUAGE=language)

    assert (workers.status_code, queues.status_code) == (200, 200)
    for word in workers_words:
        assert word in workers.content.decode(), word
    html = queues.content.decode()
    for word in queues_words:
        assert word in html, word
    assert "acct-7" in html
    assert queues.context["rows"][0]["count"] == 1


def test_queues_page_needs_the_view_permission(client, django_user_model):
    clerk = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    client.force_login(clerk)

    assert client.get(reverse("admin:taskcenter_queues")).status_code == 403
