"""A real worker process runs tasks end to end, survives crashes and honours stop/cancel."""

import pytest

from taskcenter.models import ExecutionStatus, Status, Task

from .conftest import wait_for

pytestmark = pytest.mark.slow


def test_worker_process_runs_queued_tasks_to_completion(start_worker, make_task):
    tasks = [make_task("demo.noop", start=True) for _ in range(5)]
    worker = start_worker("--concurrency", "2")

    wait_for(lambda: Task.objects.filter(status=Status.COMPLETED).count() == 5)

    for task in tasks:
        task.refresh_from_db()
        assert task.result == {"ok": True}
        assert task.progress == 100
        execution = task.executions.get()
        assert execution.status == ExecutionStatus.COMPLETED
        assert execution.worker_id
        assert list(task.events.values_list("verb", flat=True)) == [
            "created",
            "started",
            "completed",
        ]
    assert worker.terminate() == 0
