"""Four worker processes, two of them SIGKILLed mid-run: the statistics tallies stay exact."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from taskcenter.models import ExecutionStatus, Status, Task, TaskExecution, TaskTally
from taskcenter.models.tally_fold import fold_tallies
from tests.support.processes import wait_for
from tests.taskcenter.models.test_tallies import assert_tallies_match_rows, task_tally

pytestmark = pytest.mark.slow

# Short leases, and a short wait before a queued task whose engine job died with its worker
# (taken, not yet claimed) is dispatched again.
FAST_RECOVERY = {"TASKCENTER_LEASE_SECONDS": "2", "TASKCENTER_ORPHAN_AFTER_SECONDS": "2"}
WORKER_ARGS = ("--concurrency", "4", "--reap-interval", "0.5")
TASKS = 160


def completed() -> int:
    return Task.objects.filter(status=Status.COMPLETED).count()


def check() -> str:
    out = StringIO()
    call_command("rebuild_tallies", "--check", stdout=out)  # raises CommandError on drift
    return out.getvalue()


def test_four_workers_with_kills_leave_tallies_that_a_recount_confirms(
    start_worker, make_task, other_user
):
    # Two owners and two platforms: four keys, every worker moving tasks of each of them.
    for n in range(TASKS):
        owner = {"owner": other_user} if n % 2 else {}
        make_task("demo.sleep", {"ms": 200}, start=True, platform="xy"[n // 2 % 2], **owner)
    workers = [start_worker(*WORKER_ARGS, env=FAST_RECOVERY) for _ in range(4)]
    for worker in workers:
        worker.wait_until_polling()

    wait_for(lambda: completed() >= 20, timeout=60)
    workers[0].kill()  # SIGKILL: its attempts (and any open transaction) die with it
    assert "0 tally rows differed" in check()  # while three workers write
    wait_for(lambda: completed() >= 60, timeout=60)
    workers[1].kill()
    assert "0 tally rows differed" in check()
    start_worker(*WORKER_ARGS, env=FAST_RECOVERY)

    wait_for(lambda: completed() == TASKS, timeout=120)
    assert TaskExecution.objects.filter(status=ExecutionStatus.LOST).exists()
    assert f"{TASKS} tasks and {TASKS} timed attempts; 0 tally rows differed" in check()
    assert_tallies_match_rows()

    for worker in workers[2:]:
        assert worker.terminate() == 0
    fold_tallies()
    rows = list(TaskTally.objects.values_list("shard", "n"))
    assert {shard for shard, _ in rows} == {0}
    assert len(rows) == len(task_tally()) == 4
    assert_tallies_match_rows()
