"""``run_worker --processes N``: N worker processes forked from one start, with real processes
on the test database: they share a backlog, a stop signal reaches each of them once, a killed
one is replaced, and they stop by themselves when their parent is gone."""

from __future__ import annotations

import os
import re
import signal

import pytest

from taskcenter import lifecycle
from taskcenter.models import Status, Task, TaskExecution
from taskcenter.models import WorkerProcess as WorkerRow
from tests.support.processes import WorkerProcess, wait_for

pytestmark = pytest.mark.slow


def children(worker: WorkerProcess) -> list[int]:
    """The pids the parent reported when it had started its processes."""
    found = wait_for(
        lambda: re.search(r"Started \d+ worker processes: ([\d, ]+)", worker.output()), timeout=60
    )
    return [int(pid) for pid in found.group(1).split(", ")]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) is gone for our purposes.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def started_lines(worker: WorkerProcess) -> list[str]:
    return re.findall(r"Worker (\S+) started: concurrency=", worker.output())


def test_processes_share_a_backlog_and_exit_together_when_idle(start_worker, user):
    lifecycle.create_tasks(
        [{"owner": user, "task_type": "demo.noop", "start": True} for _ in range(300)]
    )

    worker = start_worker("--processes", "2", "--concurrency", "1", "--exit-when-idle")
    assert worker.process.wait(timeout=120) == 0, worker.output()

    assert Task.objects.filter(status=Status.COMPLETED).count() == 300
    ran = {
        name: int(count)
        for name, count in re.findall(r"Worker (\S+) ran (\d+) attempt", worker.output())
    }
    pids = children(worker)
    # Two processes of their own (not the parent), each its own worker, between them all 300.
    assert len(ran) == 2
    assert {int(name.rsplit(":", 1)[1]) for name in ran} == set(pids)
    assert worker.pid not in pids
    assert sum(ran.values()) == 300
    assert set(TaskExecution.objects.values_list("worker_id", flat=True)) <= set(ran)
    assert WorkerRow.objects.filter(pid__in=pids, stopped_at__isnull=False).count() == 2


def test_a_stop_signal_reaches_each_process_once_and_they_finish_their_attempts(
    start_worker, make_task
):
    worker = start_worker("--processes", "2", "--worker-id", "pair")
    pids = children(worker)
    wait_for(lambda: len(started_lines(worker)) == 2, timeout=60)
    assert sorted(started_lines(worker)) == ["pair-1", "pair-2"]
    sleepers = [make_task("demo.sleep", {"ms": 1500}, start=True) for _ in range(2)]
    wait_for(lambda: all(Task.objects.get(pk=t.pk).status == Status.RUNNING for t in sleepers))

    worker.signal(signal.SIGTERM)
    assert worker.process.wait(timeout=30) == 0, worker.output()

    # One signal each: both finished the attempt they were running (a second would have made
    # them exit at once and leave it to the reaper).
    assert [Task.objects.get(pk=t.pk).status for t in sleepers] == [Status.COMPLETED] * 2
    assert "exiting now" not in worker.output()
    assert not any(alive(pid) for pid in pids)
    assert WorkerRow.objects.filter(name__in=["pair-1", "pair-2"], stopped_at=None).count() == 0


def test_a_killed_process_is_replaced(start_worker, make_task):
    worker = start_worker("--processes", "2")
    first, second = children(worker)
    wait_for(lambda: len(started_lines(worker)) == 2, timeout=60)

    os.kill(first, signal.SIGKILL)
    wait_for(lambda: len(started_lines(worker)) == 3, timeout=60)
    assert "exited with signal SIGKILL; starting another" in worker.output()
    # A new process, with a name of its own.
    assert len(set(started_lines(worker))) == 3
    assert not alive(first)
    # The pair still works: a task started now is run.
    task = make_task("demo.noop", start=True)
    wait_for(lambda: Task.objects.get(pk=task.pk).status == Status.COMPLETED, timeout=30)

    worker.signal(signal.SIGTERM)
    assert worker.process.wait(timeout=30) == 0, worker.output()
    assert not alive(second)


def test_processes_stop_by_themselves_when_their_parent_is_killed(start_worker):
    worker = start_worker("--processes", "2")
    pids = children(worker)
    wait_for(lambda: len(started_lines(worker)) == 2, timeout=60)

    worker.kill()  # SIGKILL: the parent cannot pass anything on

    wait_for(lambda: not any(alive(pid) for pid in pids), timeout=30)
    assert "lost its parent; stopping" in worker.output()
    assert WorkerRow.objects.filter(pid__in=pids, stopped_at=None).count() == 0
