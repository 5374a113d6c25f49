"""GET /api/sync/tasks/statistics: stored counts by status word, and live engine figures."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from taskcenter import lifecycle
from taskcenter.kinds import get_kind
from taskcenter.kinds.context import AttemptContext
from taskcenter.models import Task

pytestmark = pytest.mark.django_db

URL = "/api/sync/tasks/statistics"


def sync_task(owner, *, kind: str = "sync.full_sync", source: str = "ds_s", **fields) -> Task:
    return lifecycle.create_task(
        owner=owner,
        task_type=kind,
        parameters={"data_source_id": source},
        data_source_id=source,
        **fields,
    )


def claimed(owner, *, lease: float = 60.0, worker: str = "w1", **fields):
    task = sync_task(owner, start=True, **fields)
    return lifecycle.claim_attempt(task, worker_id=worker, lease=lease)


def test_statistics_merge_stored_counts_with_live_engine_figures(api, other_api, staff_api):
    owner = api.user
    _, done = claimed(owner)
    lifecycle.complete_attempt(done, result={"records": 3, "watermark": "x"})
    _, old_done = claimed(owner, kind="sync.incremental_sync")
    lifecycle.complete_attempt(old_done, result={"records": 1, "watermark": "x"})
    # Finished before the window: counted as stored, not as recent throughput.
    Task.objects.filter(pk=old_done.task_id).update(
        finished_at=timezone.now() - timedelta(minutes=30)
    )
    _, failing = claimed(owner)
    lifecycle.fail_attempt(failing, error="boom", permanent=True)
    task, running = claimed(owner)
    ctx = AttemptContext(
        task=task, execution=running, kind=get_kind(task.task_type), worker_id="w1", lease=60
    )
    ctx.save_results(
        {"key": f"r{n}", "data_type": "sync_record", "data": {"id": n}} for n in range(7)
    )
    claimed(owner, lease=0.01, worker="w-dead")  # its worker stopped renewing the lease
    sync_task(owner, start=True)  # due now
    sync_task(owner, start=True, run_after=timezone.now() + timedelta(hours=1))  # not yet due
    lifecycle.cancel_task(sync_task(owner))
    sync_task(other_api.user, start=True)  # someone else's
    lifecycle.create_task(owner=owner, task_type="demo.noop", start=True)  # not a sync task
    time.sleep(0.05)

    response = api.get(URL, {"window": 5})

    assert response.status_code == 200
    stats = response.json()["data"]
    assert stats["total"] == 8
    assert stats["by_status"] == {
        "pending": 2,
        "running": 2,
        "completed": 2,
        "failed": 1,
        "paused": 0,
        "cancelled": 1,
    }
    assert stats["by_type"] == {"full_sync": 7, "incremental_sync": 1}
    assert stats["engine"] == {
        "running_now": 1,
        "queued_now": 1,
        "workers_now": 1,
        "window_minutes": 5,
        "tasks_finished": 3,
        "tasks_completed": 1,
        "tasks_failed": 1,
        "tasks_finished_per_minute": 0.6,
        "records_copied": 7,
        "records_per_minute": 1.4,
    }
    everyone = staff_api.get(URL).json()["data"]
    assert everyone["total"] == 9
    assert everyone["engine"]["window_minutes"] == 5
    by_source = api.get(URL, {"data_source_id": "elsewhere"}).json()["data"]
    assert by_source["total"] == 0


@pytest.mark.parametrize("window", ["0", "1441", "x"])
def test_statistics_refuse_a_bad_window(api, window):
    response = api.get(URL, {"window": window})

    assert response.status_code == 400
    assert response.json()["error"]["fields"][0]["field"] == "window"
