"""Sync tasks run by a real worker process against the sandbox's data source, over HTTP."""

from __future__ import annotations

import math
import time

import pytest
import requests

from sandbox.datasource import base_records
from sandbox.platform import DEFAULT_TOKEN
from scraping.models import ScrapeResult
from taskcenter.models import FINISHED_STATUSES, ExecutionStatus, Status, Task, TaskExecution
from tests.support.processes import wait_for

pytestmark = pytest.mark.slow

URL = "/api/sync/tasks"


@pytest.fixture
def worker(start_worker, platform):
    return start_worker(
        env={"SYNC_SOURCE_BASE_URL": platform.url, "SYNC_SOURCE_TOKEN": DEFAULT_TOKEN}
    )


def submit(api, **body) -> int:
    response = api.post(URL, body, format="json")
    assert response.status_code == 201, response.json()
    return int(response.json()["data"]["id"].removeprefix("task_"))


def finished(task_id: int, timeout: float = 30.0) -> Task:
    wait_for(
        lambda: Task.objects.filter(pk=task_id, status__in=FINISHED_STATUSES).exists(),
        timeout=timeout,
    )
    return Task.objects.get(pk=task_id)


def stored(task_id: int) -> list[dict]:
    return list(
        ScrapeResult.objects.filter(task_id=task_id, data_type="sync_record")
        .order_by("id")
        .values_list("data", flat=True)
    )


def change(platform, source_id: str, **body) -> dict:
    response = requests.post(
        f"{platform.url}/api/datasources/{source_id}/changes",
        json=body,
        headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_full_then_incremental_sync_copy_everything_then_only_what_changed(api, platform, worker):
    source = base_records("ds_worker", "")
    full_id = submit(
        api,
        data_source_id="ds_worker",
        task_type="full_sync",
        parameters={"batch_size": 40, "timeout": 30},
    )

    full = finished(full_id)

    assert full.status == Status.COMPLETED, full.error_message
    assert [r["id"] for r in stored(full_id)] == [r["id"] for r in source]
    assert full.result == {
        "mode": "full",
        "data_source_id": "ds_worker",
        "interface_id": "",
        "since": None,
        "watermark": source[-1]["updated_at"],
        "records": len(source),
        "pages": math.ceil(len(source) / 40),
    }
    pages = [r for r in platform.requests if r["path"] == "/api/datasources/ds_worker/records"]
    assert len(pages) == math.ceil(len(source) / 40)
    assert {r["query"]["batch_size"] for r in pages} == {"40"}
    assert "updated_after" not in pages[0]["query"]

    changed = change(platform, "ds_worker", modify=[source[3]["id"], source[10]["id"]], append=3)
    incremental_id = submit(
        api, data_source_id="ds_worker", task_type="incremental_sync", parameters={"batch_size": 2}
    )

    incremental = finished(incremental_id)

    assert incremental.status == Status.COMPLETED, incremental.error_message
    copied = stored(incremental_id)
    assert copied == changed["data"]
    assert [r["version"] for r in copied] == [2, 2, 1, 1, 1]
    assert incremental.result["since"] == source[-1]["updated_at"]
    assert incremental.result["watermark"] == changed["watermark"]
    assert incremental.result["records"] == 5
    assert incremental.result["pages"] == 3
    later = [r for r in platform.requests if r["path"].endswith("/records")][len(pages) :]
    assert {r["query"]["updated_after"] for r in later} == {source[-1]["updated_at"]}

    # Nothing changed since: the next incremental copies nothing and keeps the watermark.
    idle_id = submit(api, data_source_id="ds_worker", task_type="incremental_sync")
    idle = finished(idle_id)
    assert idle.status == Status.COMPLETED
    assert stored(idle_id) == []
    assert idle.result["records"] == 0
    assert idle.result["watermark"] == changed["watermark"]

    detail = api.get(f"{URL}/task_{incremental_id}").json()["data"]
    assert detail["status"] == "completed"
    assert detail["records_synced"] == 5
    assert detail["watermark"] == changed["watermark"]
    assert detail["progress"] == 100


def test_cancel_stops_a_running_sync_between_pages(api, platform, worker):
    platform.control(slow_ms=150)
    total = len(base_records("ds_slow", ""))
    task_id = submit(
        api, data_source_id="ds_slow", task_type="full_sync", parameters={"batch_size": 10}
    )
    wait_for(lambda: len(stored(task_id)) >= 20, timeout=30)

    live = api.get(f"{URL}/task_{task_id}").json()["data"]
    cancelled = api.post(f"{URL}/task_{task_id}/cancel")

    assert live["status"] == "running"
    assert live["live"]["records_so_far"] >= 20
    assert live["live"]["records_per_second"] > 0
    assert live["live"]["worker_id"]
    assert cancelled.status_code == 200
    assert cancelled.json()["data"]["status"] == "cancelled"
    execution = wait_for(
        lambda: TaskExecution.objects.filter(
            task_id=task_id, status=ExecutionStatus.CANCELLED
        ).first(),
        timeout=15,
    )
    copied = len(stored(task_id))
    assert copied < total
    assert Task.objects.get(pk=task_id).status == Status.CANCELLED
    assert execution.result_count == copied
    # The handler is gone: no page is fetched after its attempt closed.
    requests_then = len(platform.requests)
    time.sleep(0.5)
    assert len(platform.requests) == requests_then


def test_a_source_slower_than_the_timeout_fails_the_task_as_timed_out(api, platform, worker):
    platform.control(slow_ms=1500)
    task_id = submit(
        api, data_source_id="ds_late", task_type="full_sync", parameters={"timeout": 0.5}
    )

    task = finished(task_id)

    assert task.status == Status.FAILED
    assert "timed out" in task.error_message
    assert "0.5 s" in task.error_message
    assert task.executions.count() == 1  # a spent budget is not retried
    failed = api.get(f"{URL}/task_{task_id}").json()["data"]
    assert failed["status"] == "failed"
    assert "timed out" in failed["error_message"]

    # The source is fast again before the retry: a woken worker starts the retried attempt
    # within milliseconds, sooner than a control call made after the retry would land.
    platform.control(slow_ms=0)
    retried = api.post(f"{URL}/task_{task_id}/retry")
    assert retried.status_code == 200
    task = finished(task_id)
    assert task.status == Status.COMPLETED
    assert task.result["records"] == len(base_records("ds_late", ""))
