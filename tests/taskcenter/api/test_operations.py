"""``/api/v1/workers`` and ``/api/v1/queues``: staff only, paginated like every list."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from taskcenter import lifecycle
from taskcenter.models import WorkerProcess as WorkerRow

pytestmark = pytest.mark.django_db


def worker(name: str, *, silent: float = 0, stopped: bool = False, **fields) -> WorkerRow:
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
        **fields,
    )


@pytest.mark.parametrize("url", ["/api/v1/workers", "/api/v1/queues"])
def test_normal_users_are_refused_and_anonymous_callers_asked_to_log_in(api, anon_api, url):
    worker("w1")

    refused = api.get(url)
    assert refused.status_code == 403
    assert refused.json() == {"detail": "Administrators only."}
    assert anon_api.get(url).status_code == 401


def test_a_normal_user_cannot_read_one_worker_either(api, staff_api):
    row = worker("w1")

    assert api.get(f"/api/v1/workers/{row.pk}").status_code == 403
    assert staff_api.get(f"/api/v1/workers/{row.pk}").json()["name"] == "w1"
    assert staff_api.get("/api/v1/workers/00000000-0000-0000-0000-000000000000").status_code == 404
    assert staff_api.get("/api/v1/workers/" + "-" * 36).status_code == 404
    assert staff_api.get("/api/v1/workers/not-a-worker").status_code == 404


def test_staff_see_workers_alive_dead_and_stopped_with_their_counts(staff_api, make_task):
    alive = worker("alive", busy=2, running_attempts=[7, 8], attempts_run=10, attempts_deferred=6)
    worker("dead", silent=3600)
    worker("stopped", silent=10, stopped=True)
    # An attempt the reaper recovered from the dead worker.
    task = make_task("demo.noop", start=True)
    _, execution = lifecycle.claim_attempt(task, worker_id="dead")
    dead = WorkerRow.objects.get(name="dead")
    type(execution).objects.filter(pk=execution.pk).update(
        started_at=dead.last_seen_at - timedelta(seconds=1),
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    assert lifecycle.reap_lost_attempts().lost == 1

    answer = staff_api.get("/api/v1/workers")

    assert answer.status_code == 200
    body = answer.json()
    assert (body["total"], body["page"], body["size"], body["pages"]) == (3, 1, 20, 1)
    states = {item["name"]: item["state"] for item in body["items"]}
    assert states == {"alive": "alive", "dead": "dead", "stopped": "stopped"}
    lost = {item["name"]: item["lost_attempts"] for item in body["items"]}
    assert lost == {"alive": 0, "dead": 1, "stopped": 0}
    first = next(item for item in body["items"] if item["name"] == "alive")
    assert first["id"] == str(alive.pk)
    assert (first["busy"], first["running_attempts"], first["attempts_deferred"]) == (
        2,
        [7, 8],
        6,
    )
    dead_only = staff_api.get("/api/v1/workers", {"state": "dead"}).json()
    assert [item["name"] for item in dead_only["items"]] == ["dead"]
    alive_only = staff_api.get("/api/v1/workers", {"state": "alive", "size": 1}).json()
    assert [item["name"] for item in alive_only["items"]] == ["alive"]


def test_an_unknown_state_is_a_400_naming_the_parameter(staff_api):
    answer = staff_api.get("/api/v1/workers", {"state": "zombie"})

    assert answer.status_code == 400
    assert "state" in answer.content.decode()


def test_staff_read_queue_depth_paginated(staff_api, make_task):
    for platform in ("a", "b", "c"):
        make_task("demo.noop", platform=platform, start=True)
    make_task("demo.noop", platform="a", start=True)

    answer = staff_api.get("/api/v1/queues", {"size": 2})

    assert answer.status_code == 200
    body = answer.json()
    assert (body["total"], body["size"], body["pages"]) == (3, 2, 2)
    assert body["items"][0] == {
        "queue": "default",
        "kind": "demo.noop",
        "platform": "a",
        "account": "",
        "waiting_for": "worker",
        "count": 2,
        "oldest_age_seconds": body["items"][0]["oldest_age_seconds"],
    }
    assert staff_api.get("/api/v1/queues", {"size": "x"}).status_code == 400
