"""Real worker processes woken by announcements, on SQLite and on PostgreSQL.

The workers here poll every minute (``--interval 60 --safety-interval 60``), so a task that
starts within seconds was started by a wake-up: by an announcement, by the worker's own timer
for a ``run_after``, or by the poll a worker makes when its channel breaks or comes back.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from taskcenter.execution import reaper, wakeup
from taskcenter.models import EventVerb, ExecutionStatus, Status, Task, TaskEvent, TaskExecution
from tests.support.processes import ROOT, WorkerProcess, wait_for
from tests.support.throwaway_postgres import ThrowawayPostgres, missing_reason

pytestmark = pytest.mark.slow

NO_POLLING = ("--interval", "60", "--safety-interval", "60", "--reap-interval", "600")
# Far below the minute a poll would take, far above a wake-up on a busy machine.
PROMPTLY = 5.0


def listening(worker: WorkerProcess, times: int = 1) -> None:
    """Wait until the worker's channel has opened ``times`` times, and its loop sleeps again."""
    wait_for(
        lambda: worker.output().count(") listening") >= times or worker.process.poll() is not None,
        timeout=60,
    )
    assert worker.process.poll() is None, worker.output()
    time.sleep(0.5)  # the poll made when the channel opened is done: the loop sleeps a minute


def started_at(task: Task) -> float:
    execution = wait_for(
        lambda: TaskExecution.objects.filter(task=task).order_by("attempt").first(), timeout=90
    )
    return execution.started_at.timestamp()


def seconds_to_start(task: Task, since: float) -> float:
    return started_at(task) - since


def events(task: Task, verb: str) -> list[TaskEvent]:
    return list(task.events.filter(verb=verb).order_by("at", "id"))


# --- announcements wake an idle worker ----------------------------------------------------------


def test_a_notified_worker_starts_a_task_long_before_its_next_poll(start_worker, make_task):
    worker = start_worker(*NO_POLLING)
    listening(worker)

    created = time.time()
    task = make_task("demo.noop", start=True)

    assert seconds_to_start(task, created) < PROMPTLY
    wait_for(lambda: Task.objects.get(pk=task.pk).status == Status.COMPLETED)


def test_without_wakeups_the_same_worker_waits_for_its_poll(start_worker, make_task, settings):
    # The control for the test above: with wake-ups off nothing but the poll starts the task.
    settings.TASKCENTER = {**settings.TASKCENTER, "WAKEUPS": False}
    worker = start_worker(*NO_POLLING, env={"TASKCENTER_WAKEUPS": "false"})
    worker.wait_until_polling()
    time.sleep(1.0)

    task = make_task("demo.noop", start=True)
    time.sleep(PROMPTLY)

    assert not TaskExecution.objects.filter(task=task).exists()
    assert "listening" not in worker.output()


def test_a_job_nobody_announced_starts_at_the_next_safety_poll(start_worker, make_task, settings):
    worker = start_worker("--interval", "60", "--safety-interval", "2")
    listening(worker)
    settings.TASKCENTER = {**settings.TASKCENTER, "WAKEUPS": False}  # this side announces nothing

    created = time.time()
    task = make_task("demo.noop", start=True)

    assert seconds_to_start(task, created) < 2 + PROMPTLY


# --- jobs that come due later: the worker's own timer -----------------------------------------


def test_a_run_after_task_starts_on_time_without_polling(start_worker, make_task):
    worker = start_worker(*NO_POLLING)
    listening(worker)

    due = timezone.now() + timedelta(seconds=2)
    task = make_task("demo.noop", start=True, run_after=due)

    late = seconds_to_start(task, due.timestamp())
    assert 0 <= late < 1.0


def test_each_of_several_run_after_tasks_starts_on_time(start_worker, make_task):
    # The worker keeps only the earliest time it was told of; after running that job it asks
    # the database for the next one.
    worker = start_worker(*NO_POLLING)
    listening(worker)

    now = timezone.now()
    due = [now + timedelta(seconds=seconds) for seconds in (2.0, 2.5, 3.5)]
    tasks = [make_task("demo.noop", start=True, run_after=at) for at in due]

    for task, at in zip(tasks, due, strict=True):
        late = seconds_to_start(task, at.timestamp())
        assert 0 <= late < 1.0, f"task {task.pk} started {late:.3f}s after it came due"


def test_a_worker_started_after_a_task_was_scheduled_wakes_when_it_comes_due(
    start_worker, make_task
):
    # Announced before the worker existed: its first poll asks the database what comes next.
    due = timezone.now() + timedelta(seconds=12)
    task = make_task("demo.noop", start=True, run_after=due)
    worker = start_worker(*NO_POLLING)
    listening(worker)
    assert time.time() < due.timestamp() - 1, "the worker took too long to boot for this test"

    late = seconds_to_start(task, due.timestamp())
    assert 0 <= late < 1.0


def test_retries_and_poll_continuations_resume_on_time_without_polling(start_worker, make_task):
    worker = start_worker(*NO_POLLING)
    listening(worker)

    flaky = make_task("demo.flaky", {"fail_times": 1}, start=True)
    polled = make_task("demo.poll", {"polls": 3, "interval": 1.0}, start=True)

    for task in (flaky, polled):
        wait_for(lambda t=task: Task.objects.get(pk=t.pk).status == Status.COMPLETED, timeout=30)
    requeued = events(flaky, EventVerb.REQUEUED)[0]
    retried = events(flaky, EventVerb.STARTED)[1]
    late = (retried.at - requeued.at).total_seconds() - requeued.data["retry_in"]
    assert -0.01 <= late < 1.0
    waits = events(polled, EventVerb.WAITING)
    resumes = events(polled, EventVerb.RESUMED)
    assert len(waits) == len(resumes) == 3
    for waited, resumed in zip(waits, resumes, strict=True):
        late = (resumed.at - waited.at).total_seconds() - waited.data["seconds"]
        assert -0.01 <= late < 1.0


def test_a_task_the_reaper_requeues_wakes_an_idle_worker(start_worker, make_task):
    fast_lease = {"TASKCENTER_LEASE_SECONDS": "2"}
    task = make_task("demo.countdown", {"seconds": 2, "interval": 0.1}, start=True)
    doomed = start_worker("--worker-id", "doomed", env=fast_lease)
    wait_for(lambda: Task.objects.get(pk=task.pk).progress > 0, timeout=60)
    doomed.process.kill()
    doomed.process.wait(timeout=5)
    rescuer = start_worker("--worker-id", "rescuer", *NO_POLLING, env=fast_lease)
    listening(rescuer)

    # The reaper pass of another process (a `reap_tasks` cron, a third worker): it requeues the
    # lost attempt and announces it; the rescuer is asleep until its next poll in a minute.
    wait_for(lambda: reaper.reap().requeued == 1, timeout=30, every=0.25)
    requeued = time.time()

    second = wait_for(lambda: task.executions.filter(attempt=2).first(), timeout=30)
    assert second.worker_id == "rescuer"
    assert second.started_at.timestamp() - requeued < PROMPTLY
    first = task.executions.get(attempt=1)
    assert first.status == ExecutionStatus.LOST


# --- a broken channel: polling at --interval until it is back ----------------------------------


def break_the_channel(worker: WorkerProcess) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s AND datname = current_database()",
                [wakeup.PostgresListener.APPLICATION_NAME],
            )
            assert cursor.fetchone(), "the worker's LISTEN connection was not found"
    else:
        directory = wakeup.socket_directory(connection.settings_dict["NAME"])
        assert directory is not None
        sockets = list(directory.glob(f"{worker.pid}-*.sock"))
        assert sockets, "the worker's socket was not found"
        for path in sockets:
            path.unlink()


def test_a_broken_channel_falls_back_to_polling_and_listens_again(start_worker, make_task):
    worker = start_worker("--interval", "0.2", "--safety-interval", "60", "--reap-interval", "600")
    listening(worker)

    break_the_channel(worker)
    created = time.time()
    unheard = make_task("demo.noop", start=True)  # nobody hears this one

    assert seconds_to_start(unheard, created) < PROMPTLY
    listening(worker, times=2)
    assert ") down:" in worker.output()
    created = time.time()
    heard = make_task("demo.noop", start=True)
    # Listening again, the worker polls once a minute: only the announcement explains this.
    assert seconds_to_start(heard, created) < PROMPTLY


CREATE_TASK = (
    "import time\n"
    "from django.contrib.auth import get_user_model\n"
    "from taskcenter import lifecycle\n"
    "owner, _ = get_user_model().objects.get_or_create(username='wakeups')\n"
    "task = lifecycle.create_task(owner=owner, task_type='demo.noop', start=True)\n"
    "print(task.pk, time.time())\n"
)


@pytest.fixture
def own_postgres():
    """A PostgreSQL server of this test's own, migrated: the restart hits no other test run."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: runs in the PostgreSQL suite")
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    server = ThrowawayPostgres()
    try:
        server.start()
        manage(server.url, "migrate", "--noinput")
        yield server
    finally:
        server.stop()


def manage(database_url: str, *args: str) -> str:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "taskcenter.test_settings",
        "DATABASE_URL": database_url,
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return done.stdout


@pytest.mark.timeout(600)
def test_after_a_database_restart_the_worker_listens_again(own_postgres):
    url = own_postgres.url
    worker = WorkerProcess(
        "--interval",
        "0.2",
        "--safety-interval",
        "60",
        "--reap-interval",
        "600",
        env={"DATABASE_URL": url},
    )
    try:
        listening(worker)
        own_postgres.restart()  # fast shutdown: every connection is ended
        listening(worker, times=2)

        task_id, created = manage(url, "shell", "-c", CREATE_TASK).splitlines()[-1].split()

        def started() -> float | None:
            with psycopg.connect(url) as db:
                row = db.execute(
                    "SELECT started_at FROM taskcenter_taskexecution WHERE task_id = %s",
                    [int(task_id)],
                ).fetchone()
            return row[0].timestamp() if row else None

        assert wait_for(started, timeout=60) - float(created) < PROMPTLY
        assert ") down:" in worker.output()
    finally:
        worker.close()
