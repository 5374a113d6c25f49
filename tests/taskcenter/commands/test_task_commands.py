"""Operators' management commands: retry_tasks, cancel_tasks, reap_tasks, prune_tasks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from argparse import ArgumentTypeError
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from taskcenter import lifecycle
from taskcenter.execution import dispatch
from taskcenter.management.selection import parse_age, parse_duration, parse_since, parse_until
from taskcenter.models import ExecutionStatus, Status, Task, TaskEvent, TaskExecution
from tests.support.processes import ROOT, test_database_url, wait_for


def run(command: str, *args: str) -> str:
    """Run a command as an operator would type it; return what it printed."""
    out = StringIO()
    call_command(command, *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def statuses(*tasks: Task) -> list[str]:
    return [Task.objects.get(pk=task.pk).status for task in tasks]


@pytest.fixture
def failed_task(make_task):
    """A task that ran once and failed permanently."""

    def make(**fields) -> Task:
        task = make_task(start=True, **fields)
        _, execution = lifecycle.claim_attempt(task, worker_id="w1")
        return lifecycle.fail_attempt(execution, error="platform said no", permanent=True)

    return make


@pytest.fixture
def completed_task(make_task):
    def make(**fields) -> Task:
        task = make_task(start=True, **fields)
        _, execution = lifecycle.claim_attempt(task, worker_id="w1")
        return lifecycle.complete_attempt(execution, result={"ok": True})

    return make


def age(task: Task, *, days: float, field: str = "created_at") -> Task:
    """Move a timestamp into the past (test setup; never a status)."""
    Task.objects.filter(pk=task.pk).update(**{field: timezone.now() - timedelta(days=days)})
    return Task.objects.get(pk=task.pk)


# --- retry_tasks -----------------------------------------------------------------------------


def test_retry_by_status_and_platform_requeues_only_matching_tasks(failed_task):
    douyin = [failed_task(platform="douyin") for _ in range(2)]
    tiktok = failed_task(platform="tiktok")

    output = run("retry_tasks", "--status", "FAILED", "--platform", "douyin")

    assert output.strip() == "Retried 2 task(s); 0 refused"
    assert statuses(*douyin, tiktok) == [Status.QUEUED, Status.QUEUED, Status.FAILED]
    for task in douyin:
        event = TaskEvent.objects.filter(task=task).latest("id")
        assert (event.verb, event.actor) == ("retried", "command:retry_tasks")
        assert (event.from_status, event.to_status) == (Status.FAILED, Status.QUEUED)
        assert Task.objects.get(pk=task.pk).error_message == ""
    assert not TaskEvent.objects.filter(task=tiktok, verb="retried").exists()


def test_retry_counts_refused_tasks_by_their_current_status(failed_task, completed_task, make_task):
    failed = failed_task()
    queued = [make_task(start=True) for _ in range(2)]
    completed = completed_task()
    ids = ",".join(str(task.pk) for task in [failed, *queued, completed])

    output = run("retry_tasks", "--id", ids)

    assert output.strip() == "Retried 1 task(s); 3 refused (already QUEUED: 2, COMPLETED: 1)"
    assert statuses(failed, *queued, completed) == [Status.QUEUED] * 3 + [Status.COMPLETED]
    assert TaskEvent.objects.filter(actor="command:retry_tasks").count() == 1


def test_retry_without_status_selects_only_failed_tasks(failed_task, make_task):
    failed = failed_task()
    stopped = lifecycle.stop_task(make_task(start=True))

    output = run("retry_tasks", "--type", "demo.noop")

    assert output.strip() == "Retried 1 task(s); 0 refused"
    assert statuses(failed, stopped) == [Status.QUEUED, Status.STOPPED]


def test_retry_accepts_repeated_and_lowercase_statuses(failed_task, make_task):
    failed = failed_task()
    stopped = lifecycle.stop_task(make_task(start=True))
    cancelled = lifecycle.cancel_task(make_task())

    output = run("retry_tasks", "--status", "failed,stopped", "--status", "Cancelled")

    assert output.strip() == "Retried 3 task(s); 0 refused"
    assert statuses(failed, stopped, cancelled) == [Status.QUEUED] * 3


def test_retry_by_repeated_ids_ignores_the_default_status(failed_task, make_task):
    first, second, third = failed_task(), lifecycle.stop_task(make_task(start=True)), failed_task()

    run("retry_tasks", "--id", str(first.pk), "--id", f"{second.pk}")

    assert statuses(first, second, third) == [Status.QUEUED, Status.QUEUED, Status.FAILED]


def test_retry_by_owner_leaves_other_owners_tasks(failed_task, user, other_user):
    mine, theirs = failed_task(owner=user), failed_task(owner=other_user)

    run("retry_tasks", "--owner", "bob")

    assert statuses(mine, theirs) == [Status.FAILED, Status.QUEUED]


def test_retry_since_and_until_select_by_creation_time(failed_task):
    old = age(failed_task(), days=10)
    recent = age(failed_task(), days=2)
    new = failed_task()

    run("retry_tasks", "--since", "7d", "--until", "24h")

    assert statuses(old, recent, new) == [Status.FAILED, Status.QUEUED, Status.FAILED]


def test_retry_since_accepts_iso_dates_and_datetimes(failed_task):
    old = age(failed_task(), days=10)
    new = failed_task()
    since = timezone.localdate() - timedelta(days=1)

    run("retry_tasks", "--since", since.isoformat())
    assert statuses(old, new) == [Status.FAILED, Status.QUEUED]

    run("retry_tasks", "--since", (timezone.now() - timedelta(days=11)).isoformat())
    assert statuses(old) == [Status.QUEUED]


def test_retry_dry_run_previews_and_changes_nothing(failed_task):
    tasks = [failed_task(platform="douyin") for _ in range(12)]
    events_before = TaskEvent.objects.count()

    output = run("retry_tasks", "--platform", "douyin", "--dry-run")

    lines = output.splitlines()
    assert lines[0] == "Would retry 12 task(s) (dry run: nothing changed)."
    assert lines[1].split() == ["ID", "TYPE", "PLATFORM", "STATUS", "OWNER", "CREATED"]
    assert lines[2].split()[:5] == [str(tasks[0].pk), "demo.noop", "douyin", "FAILED", "alice"]
    assert len(lines) == 2 + 10 + 1
    assert lines[-1] == "... and 2 more"
    assert set(statuses(*tasks)) == {Status.FAILED}
    assert TaskEvent.objects.count() == events_before


def test_retry_with_no_selector_is_refused(failed_task):
    task = failed_task()

    with pytest.raises(CommandError, match="No selector given"):
        run("retry_tasks")

    assert statuses(task) == [Status.FAILED]


def test_retry_all_retries_every_failed_task(failed_task, make_task):
    failed = [failed_task() for _ in range(3)]
    pending = make_task()

    output = run("retry_tasks", "--all")

    assert output.strip() == "Retried 3 task(s); 0 refused"
    assert statuses(*failed, pending) == [Status.QUEUED] * 3 + [Status.PENDING]


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--status", "BROKEN"], "--status"),
        (["--id", "12,abc"], "--id"),
        (["--since", "yesterday-ish"], "--since"),
        (["--until", "2024-02-30"], "--until"),
        (["--owner", "nobody"], "--owner"),
        (["--since", "1h", "--until", "2d"], "--since"),
    ],
)
def test_retry_bad_option_values_name_the_option(db, args, option):
    with pytest.raises(CommandError, match=option):
        run("retry_tasks", *args)


def test_retry_shows_progress_bar_on_stderr_when_asked(failed_task):
    failed_task()
    out, err = StringIO(), StringIO()

    call_command("retry_tasks", "--all", "--progress", stdout=out, stderr=err)

    assert "Retried" in err.getvalue()
    assert "1/1" in err.getvalue()
    assert "Retried 1 task(s)" in out.getvalue()


def test_retry_walks_more_tasks_than_one_chunk(failed_task, monkeypatch):
    monkeypatch.setattr("taskcenter.management.selection.CHUNK_SIZE", 3)
    tasks = [failed_task() for _ in range(8)]

    output = run("retry_tasks", "--status", "FAILED")

    assert output.strip() == "Retried 8 task(s); 0 refused"
    assert set(statuses(*tasks)) == {Status.QUEUED}


# --- cancel_tasks ----------------------------------------------------------------------------


def test_cancel_by_platform_cancels_unfinished_tasks_with_reason(make_task, completed_task):
    pending = make_task(platform="douyin")
    running = make_task(start=True, platform="douyin")
    lifecycle.claim_attempt(running, worker_id="w1")
    done = completed_task(platform="douyin")
    elsewhere = make_task(platform="tiktok")

    output = run("cancel_tasks", "--platform", "douyin", "--reason", "bad batch")

    assert output.strip() == "Cancelled 2 task(s); 0 refused"
    assert statuses(pending, running, done, elsewhere) == [
        Status.CANCELLED,
        Status.CANCELLED,
        Status.COMPLETED,
        Status.PENDING,
    ]
    event = TaskEvent.objects.filter(task=pending).latest("id")
    assert (event.verb, event.actor) == ("cancelled", "command:cancel_tasks")
    assert event.data == {"reason": "bad batch"}


def test_cancel_counts_finished_tasks_named_by_id_as_refused(make_task, completed_task):
    queued, done = make_task(start=True), completed_task()

    output = run("cancel_tasks", "--id", f"{queued.pk},{done.pk}")

    assert output.strip() == "Cancelled 1 task(s); 1 refused (already COMPLETED: 1)"
    assert statuses(queued, done) == [Status.CANCELLED, Status.COMPLETED]


def test_cancel_dry_run_changes_nothing(make_task):
    task = make_task(start=True)

    output = run("cancel_tasks", "--owner", "alice", "--dry-run")

    assert output.startswith("Would cancel 1 task(s)")
    assert statuses(task) == [Status.QUEUED]


def absent_id() -> int:
    return (Task.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000


def test_cancel_dry_run_reports_refused_tasks_and_ids_that_do_not_exist(completed_task):
    done = [completed_task(), completed_task()]
    missing = absent_id()
    events_before = TaskEvent.objects.count()

    output = run("cancel_tasks", "--id", f"{done[0].pk},{done[1].pk},{missing}", "--dry-run")

    assert output.splitlines()[0] == (
        "Would cancel 0 task(s); 2 would be refused (already COMPLETED: 2); "
        f"not found: {missing} (dry run: nothing changed)."
    )
    assert statuses(*done) == [Status.COMPLETED] * 2
    assert TaskEvent.objects.count() == events_before


def test_retry_dry_run_counts_only_what_it_would_retry(failed_task, make_task):
    failed, pending = failed_task(), make_task()
    missing = absent_id()

    output = run("retry_tasks", "--id", f"{failed.pk},{pending.pk},{missing}", "--dry-run")

    assert output.splitlines()[0] == (
        "Would retry 1 task(s); 1 would be refused (already PENDING: 1); "
        f"not found: {missing} (dry run: nothing changed)."
    )
    assert statuses(failed, pending) == [Status.FAILED, Status.PENDING]


def test_cancel_names_ids_that_do_not_exist(make_task):
    queued = make_task(start=True)
    missing = absent_id()

    output = run("cancel_tasks", "--id", f"{queued.pk},{missing}")

    assert output.strip() == f"Cancelled 1 task(s); 0 refused; not found: {missing}"
    assert statuses(queued) == [Status.CANCELLED]


def test_cancel_with_no_selector_is_refused(make_task):
    task = make_task(start=True)

    with pytest.raises(CommandError, match="--all"):
        run("cancel_tasks", "--reason", "oops")

    assert statuses(task) == [Status.QUEUED]


# --- reap_tasks ------------------------------------------------------------------------------


@pytest.fixture
def lost_execution(make_task):
    """A running attempt whose worker stopped renewing its lease a minute ago."""
    task = make_task(start=True, max_attempts=3)
    _, execution = lifecycle.claim_attempt(task, worker_id="dead-worker")
    TaskExecution.objects.filter(pk=execution.pk).update(
        lease_expires_at=timezone.now() - timedelta(minutes=1)
    )
    return execution


@pytest.fixture
def orphaned_task(make_task):
    """A QUEUED task untouched for an hour with no engine job waiting for it (its job was
    written with it, then lost: the queue was flushed)."""
    task = make_task(start=True)
    lost, _ = DBTaskResult.objects.filter(args_kwargs__args=[task.pk]).delete()
    assert lost == 1
    return age(task, days=1 / 24, field="updated_at")


def test_reap_marks_expired_execution_lost_and_requeues_its_task(lost_execution):
    output = run("reap_tasks")

    assert "Reaped 1 lost execution(s): 1 requeued, 0 failed" in output
    execution = TaskExecution.objects.get(pk=lost_execution.pk)
    assert execution.status == ExecutionStatus.LOST
    assert statuses(execution.task) == [Status.QUEUED]
    assert TaskEvent.objects.filter(task=execution.task, verb="lost").exists()


def test_reap_redispatches_orphaned_queued_tasks(orphaned_task):
    output = run("reap_tasks")

    assert "1 orphaned queued task(s) re-dispatched" in output
    event = TaskEvent.objects.filter(task=orphaned_task).latest("id")
    assert (event.verb, event.actor) == ("requeued", "system:reaper")


def test_reap_dry_run_counts_without_changing_anything(lost_execution, orphaned_task):
    events_before = TaskEvent.objects.count()

    output = run("reap_tasks", "--dry-run")

    assert output.strip() == (
        "Would reap 1 execution(s) with an expired lease and re-dispatch 1 orphaned queued "
        "task(s) (dry run: nothing changed)."
    )
    assert TaskExecution.objects.get(pk=lost_execution.pk).status == ExecutionStatus.RUNNING
    assert TaskEvent.objects.count() == events_before


def test_reap_dry_run_does_not_count_queued_tasks_with_a_waiting_engine_job(orphaned_task):
    dispatch.enqueue_attempt(orphaned_task.pk)

    output = run("reap_tasks", "--dry-run")

    assert "re-dispatch 0 orphaned" in output


@pytest.mark.slow
def test_reap_loop_runs_until_interrupted(transactional_db, lost_execution):
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "reap_tasks", "--loop", "--interval", "0.2"],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "taskcenter.test_settings",
            "DATABASE_URL": test_database_url(),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(
            lambda: TaskExecution.objects.filter(
                pk=lost_execution.pk, status=ExecutionStatus.LOST
            ).exists()
        )
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 0, output
    assert "Stopped after" in output
    assert "in total 1 lost execution(s): 1 requeued" in output


# --- prune_tasks -----------------------------------------------------------------------------


def engine_job(*, status: str, finished_days_ago: float) -> DBTaskResult:
    job_id = dispatch.enqueue_attempt(1)
    DBTaskResult.objects.filter(pk=job_id).update(
        status=status, finished_at=timezone.now() - timedelta(days=finished_days_ago)
    )
    return DBTaskResult.objects.get(pk=job_id)


def test_prune_deletes_old_finished_tasks_with_their_history(
    completed_task, failed_task, make_task
):
    old_done = age(completed_task(), days=40, field="finished_at")
    old_failed = age(failed_task(), days=40, field="finished_at")
    recent_done = age(completed_task(), days=5, field="finished_at")
    old_but_queued = age(make_task(start=True), days=40)
    old_jobs = [engine_job(status=s, finished_days_ago=40) for s in ("SUCCESSFUL", "FAILED")]
    recent_job = engine_job(status="SUCCESSFUL", finished_days_ago=5)
    ready_job = DBTaskResult.objects.get(pk=dispatch.enqueue_attempt(2))
    # Each task's own job, written with it; no worker ran them here, so they wait, READY.
    waiting = set(DBTaskResult.objects.filter(status="READY").values_list("pk", flat=True))
    assert ready_job.pk in waiting

    output = run("prune_tasks", "--older-than", "30d")

    assert set(Task.objects.values_list("pk", flat=True)) == {recent_done.pk, old_but_queued.pk}
    gone = [old_done.pk, old_failed.pk]
    assert not TaskExecution.objects.filter(task_id__in=gone).exists()
    assert not TaskEvent.objects.filter(task_id__in=gone).exists()
    assert TaskExecution.objects.filter(task=recent_done).exists()
    assert set(DBTaskResult.objects.values_list("pk", flat=True)) == {recent_job.pk, *waiting}
    assert not DBTaskResult.objects.filter(pk__in=[job.pk for job in old_jobs]).exists()
    assert output.startswith("Deleted, finished before")
    assert "  taskcenter.Task: 2" in output
    assert "  taskcenter.TaskExecution: 2" in output
    assert f"  {DBTaskResult._meta.label}: 2" in output


def test_prune_in_small_batches_deletes_everything_old(completed_task):
    for _ in range(7):
        age(completed_task(), days=40, field="finished_at")

    output = run("prune_tasks", "--older-than", "30", "--batch-size", "3")

    assert "  taskcenter.Task: 7" in output
    assert not Task.objects.exists()


def test_prune_status_narrows_to_that_finished_status(completed_task, failed_task):
    done = age(completed_task(), days=40, field="finished_at")
    failed = age(failed_task(), days=40, field="finished_at")

    run("prune_tasks", "--older-than", "30d", "--status", "failed")

    assert list(Task.objects.values_list("pk", flat=True)) == [done.pk]
    assert failed.pk not in Task.objects.values_list("pk", flat=True)


def test_prune_dry_run_counts_and_deletes_nothing(completed_task):
    task = age(completed_task(), days=40, field="finished_at")
    engine_job(status="FAILED", finished_days_ago=40)
    events = TaskEvent.objects.filter(task=task).count()
    jobs = DBTaskResult.objects.count()

    output = run("prune_tasks", "--older-than", "30d", "--dry-run")

    assert "Would delete" in output
    assert "  taskcenter.Task: 1" in output
    assert "  taskcenter.TaskExecution: 1" in output
    assert f"  taskcenter.TaskEvent: {events}" in output
    assert f"  {DBTaskResult._meta.label}: 1" in output
    assert Task.objects.filter(pk=task.pk).exists()
    assert DBTaskResult.objects.count() == jobs


class Terminal(StringIO):
    """Typed answers, on what the command takes for an interactive terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def old_tasks(completed_task) -> list[Task]:
    return [age(completed_task(), days=40, field="finished_at") for _ in range(3)]


def remaining(tasks: list[Task]) -> int:
    return Task.objects.filter(pk__in=[task.pk for task in tasks]).count()


def test_prune_older_than_1m_is_refused_as_ambiguous_and_deletes_nothing(completed_task):
    just_finished = age(completed_task(), days=0.01, field="finished_at")  # 14 minutes ago

    with pytest.raises(CommandError, match="ambiguous; write 'min' for minutes or 'mo'"):
        run("prune_tasks", "--older-than", "1m")

    assert Task.objects.filter(pk=just_finished.pk).exists()


def test_prune_older_than_1mo_keeps_what_finished_this_month(completed_task):
    old = age(completed_task(), days=40, field="finished_at")
    recent = age(completed_task(), days=20, field="finished_at")

    run("prune_tasks", "--older-than", "1mo")

    assert list(Task.objects.filter(pk__in=[old.pk, recent.pk]).values_list("pk", flat=True)) == [
        recent.pk
    ]


def test_prune_above_the_threshold_without_a_terminal_refuses_and_deletes_nothing(old_tasks):
    with pytest.raises(CommandError, match=r"3 tasks .* more than --confirm-above 2.*--yes"):
        call_command(
            "prune_tasks", "--older-than", "30d", "--confirm-above", "2", stdin=StringIO("y\n")
        )

    assert remaining(old_tasks) == 3


@pytest.mark.parametrize(("answer", "left"), [("y\n", 0), ("yes\n", 0), ("n\n", 3), ("\n", 3)])
def test_prune_above_the_threshold_asks_on_a_terminal(old_tasks, answer, left):
    out = StringIO()
    args = ["prune_tasks", "--older-than", "30d", "--confirm-above", "2"]

    if left:
        with pytest.raises(CommandError, match=r"Not confirmed\. Nothing was deleted\."):
            call_command(*args, stdin=Terminal(answer), stdout=out)
    else:
        call_command(*args, stdin=Terminal(answer), stdout=out)

    assert out.getvalue().startswith("Delete 3 tasks finished before ")
    assert "[y/N]" in out.getvalue()
    assert remaining(old_tasks) == left


def test_prune_yes_deletes_above_the_threshold_without_asking(old_tasks):
    output = run("prune_tasks", "--older-than", "30d", "--confirm-above", "2", "--yes")

    assert "  taskcenter.Task: 3" in output
    assert remaining(old_tasks) == 0


def test_prune_below_the_threshold_and_dry_runs_never_ask(old_tasks):
    run("prune_tasks", "--older-than", "30d", "--confirm-above", "0", "--dry-run")
    assert remaining(old_tasks) == 3
    run("prune_tasks", "--older-than", "30d", "--confirm-above", "3")
    assert remaining(old_tasks) == 0


@pytest.mark.slow
def test_prune_process_with_no_input_refuses_above_the_threshold(transactional_db, old_tasks):
    result = subprocess.run(
        [sys.executable, "manage.py", "prune_tasks", "--older-than", "30d", "--confirm-above", "1"],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "taskcenter.test_settings",
            "DATABASE_URL": test_database_url(),
        },
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 1
    assert "there is no terminal to ask" in result.stderr
    assert remaining(old_tasks) == 3


@pytest.mark.parametrize(
    ("args", "option"),
    [
        ([], "--older-than"),
        (["--older-than", "soon"], "--older-than"),
        (["--older-than", "1m"], "--older-than"),
        (["--older-than", "30d", "--confirm-above", "-1"], "--confirm-above"),
        (["--older-than", "30d", "--status", "RUNNING"], "--status"),
        (["--older-than", "30d", "--status", "nope"], "--status"),
    ],
)
def test_prune_bad_option_values_name_the_option(db, args, option):
    with pytest.raises(CommandError, match=option):
        run("prune_tasks", *args)


# --- parsers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30min", timedelta(minutes=30)),
        ("3mo", timedelta(days=90)),
        ("1y", timedelta(days=365)),
        ("1h30min", timedelta(hours=1, minutes=30)),
        ("PT30M", timedelta(minutes=30)),
        ("P1DT12H", timedelta(days=1, hours=12)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("90s", timedelta(seconds=90)),
        ("P3D", timedelta(days=3)),
    ],
)
def test_parse_duration_accepts_short_and_iso_forms(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("1m", "ambiguous"),
        ("30M", "ambiguous"),
        ("1h5m", "ambiguous"),
        ("P1M", "3mo"),
        ("P2W", "2w"),
        ("P1Y", "1y"),
    ],
)
def test_parse_duration_refuses_units_that_could_mean_two_things(text, hint):
    with pytest.raises(ArgumentTypeError, match=hint):
        parse_duration(text)


def test_parse_age_reads_a_plain_number_as_days():
    assert parse_age("30") == timedelta(days=30)


def test_until_a_bare_date_includes_that_whole_day():
    since, until = parse_since("2024-05-01"), parse_until("2024-05-01")

    assert until - since == timedelta(days=1)
    assert timezone.is_aware(since)
