"""The trigger-kept tallies behind the statistics endpoint always equal a recount of the rows."""

from __future__ import annotations

import random
from collections import Counter
from functools import partial

import pytest
from django.db.models import Sum
from rest_framework.test import APIClient

from taskcenter import lifecycle
from taskcenter.api.statistics import histogram_percentiles, tallied_statistics
from taskcenter.models import DurationTally, Status, Task, TaskExecution, TaskTally
from taskcenter.models.tally_fold import fold_tallies
from taskcenter.models.tally_triggers import bin_edge, bin_value, duration_bin, rebuild_tallies
from tests.support.lifecycle import LEASE, WORKER, later
from tests.support.races import race

TASKS = "/api/v1/tasks"


def summed(model, *key: str) -> Counter:
    """Each key's count: the sum of its rows over the shards (keys that sum to zero left out)."""
    rows = model.objects.order_by().values_list(*key).annotate(total=Sum("n"))
    return Counter({tuple(values): n for *values, n in rows if n})


def task_tally() -> Counter:
    return summed(TaskTally, "owner_id", "status", "task_type", "platform")


def task_recount() -> Counter:
    return Counter(
        tuple(key)
        for key in Task.objects.values_list("owner_id", "status", "task_type", "platform")
    )


def duration_tally() -> Counter:
    return summed(DurationTally, "owner_id", "task_type", "platform", "bin")


def duration_recount() -> Counter:
    rows = TaskExecution.objects.filter(status="COMPLETED", duration__isnull=False).values_list(
        "task__owner_id", "task__task_type", "task__platform", "duration"
    )
    return Counter((owner, kind, platform, duration_bin(d)) for owner, kind, platform, d in rows)


def assert_tallies_match_rows() -> None:
    assert task_tally() == task_recount()
    assert duration_tally() == duration_recount()


def test_bins_are_log_scale_and_their_values_lie_inside_them():
    assert duration_bin(0) == 0
    assert duration_bin(0.0009) == 0
    assert duration_bin(0.001) == 1
    assert duration_bin(2.0) == duration_bin(1.0) + 4  # four bins per doubling
    for index in range(1, 100):
        assert bin_edge(index) <= bin_value(index) < bin_edge(index + 1)
        assert bin_edge(index + 1) / bin_edge(index) == pytest.approx(2**0.25)
    for seconds in (0.0123, 0.5, 1.0, 7.3, 61.0, 3600.0):
        assert bin_value(duration_bin(seconds)) == pytest.approx(seconds, rel=0.09)


def test_histogram_percentiles_use_nearest_rank_over_bins():
    bins = {duration_bin(float(s)): 0 for s in range(1, 101)}
    for seconds in range(1, 101):
        bins[duration_bin(float(seconds))] += 1

    result = histogram_percentiles(bins)

    assert result["count"] == 100
    assert result["approximate"] is True
    assert result["p50"] == pytest.approx(50.0, rel=0.09)
    assert result["p95"] == pytest.approx(95.0, rel=0.09)
    assert histogram_percentiles({}) == {"count": 0, "p50": None, "p95": None, "approximate": True}


@pytest.mark.django_db
def test_every_lifecycle_path_keeps_the_tallies_exact(make_task, other_user):
    tasks = [make_task("demo.noop", platform=random.choice("ab")) for _ in range(12)]
    tasks += [make_task("demo.sleep", owner=other_user, start=True) for _ in range(4)]
    assert_tallies_match_rows()

    for task in tasks[:6]:
        lifecycle.start_task(task)
    claimed = [lifecycle.claim_attempt(task, worker_id=WORKER, lease=LEASE) for task in tasks[:6]]
    assert_tallies_match_rows()

    lifecycle.complete_attempt(claimed[0][1], result={})
    lifecycle.complete_attempt(claimed[1][1], result={})
    lifecycle.fail_attempt(claimed[2][1], error="boom", permanent=True)
    lifecycle.fail_attempt(claimed[3][1], error="again")  # requeued with back-off
    lifecycle.cancel_task(tasks[4])
    lifecycle.stop_task(tasks[12])
    lifecycle.cancel_task(tasks[13])
    assert_tallies_match_rows()

    lifecycle.retry_task(tasks[2])
    lifecycle.reap_lost_attempts(now=later())  # task 5's attempt is lost
    lifecycle.delete_task(tasks[0])
    lifecycle.update_task(tasks[8], platform="c")
    assert_tallies_match_rows()
    assert sum(duration_tally().values()) == 1  # task 1's attempt; task 0 went with its delete


@pytest.mark.django_db
def test_bulk_writes_deletes_and_a_rebuild_keep_the_tallies_exact(make_task, user):
    tasks = Task.objects.bulk_create(
        Task(owner=user, task_type="bulk.kind", platform=f"p{n % 3}", status=Status.COMPLETED)
        for n in range(30)
    )
    TaskExecution.objects.bulk_create(
        TaskExecution(task=task, attempt=1, status="COMPLETED", duration=0.01 * (n + 1))
        for n, task in enumerate(tasks)
    )
    assert_tallies_match_rows()

    Task.objects.filter(platform="p1").update(status=Status.FAILED)
    TaskExecution.objects.filter(task__platform="p2").update(duration=42.0)
    Task.objects.filter(platform="p0").delete()
    assert_tallies_match_rows()

    TaskTally.objects.all().delete()
    DurationTally.objects.update(n=999)
    rebuild_tallies()
    assert_tallies_match_rows()


@pytest.mark.django_db(transaction=True)
def test_concurrent_transitions_keep_the_tallies_exact_without_deadlocks(make_task):
    # Claims (QUEUED -> RUNNING) racing failures that requeue (RUNNING -> QUEUED) move tallies
    # the opposite way round: on PostgreSQL that is where row-by-row counters would deadlock.
    for _ in range(5):
        queued = [make_task("demo.noop", start=True, max_attempts=5) for _ in range(4)]
        running = [
            lifecycle.claim_attempt(
                make_task("demo.noop", start=True, max_attempts=5), worker_id=WORKER
            )[1]
            for _ in range(4)
        ]
        calls = [partial(lifecycle.claim_attempt, task, worker_id=WORKER) for task in queued]
        calls += [partial(lifecycle.fail_attempt, execution, error="x") for execution in running]
        calls += [partial(lifecycle.complete_attempt, running[0], result={})]

        outcomes = race(*calls)

        assert sum(outcome.ok for outcome in outcomes) >= len(calls) - 1
        assert_tallies_match_rows()


@pytest.mark.django_db
def test_statistics_from_tallies_equal_the_row_path(user, staff_user, other_user, make_task):
    for n in range(20):
        task = make_task("demo.noop", start=True, platform=("x", "y")[n % 2])
        _, execution = lifecycle.claim_attempt(task, worker_id=WORKER)
        if n % 3:
            lifecycle.complete_attempt(execution, result={})
        else:
            lifecycle.fail_attempt(execution, error="boom", permanent=True)
    make_task("demo.sleep", owner=other_user, platform="x")
    api = APIClient()
    api.force_authenticate(staff_user)

    for query in (
        "",
        "?status=FAILED&platform=x",
        "?task_type=demo.noop,demo.sleep",
        "?status=COMPLETED",
    ):
        tallied = api.get(f"{TASKS}/statistics{query}").json()
        window = ("&" if query else "?") + "created_after=2000-01-01"
        exact = api.get(f"{TASKS}/statistics{query}{window}").json()
        assert tallied["duration"]["approximate"] is True
        assert exact["duration"]["approximate"] is False
        assert {k: v for k, v in tallied.items() if k != "duration"} == {
            k: v for k, v in exact.items() if k != "duration"
        }, query
        assert tallied["duration"]["count"] == exact["duration"]["count"], query

    # Scoping: a user sees only their own tasks, and filtering by another user gives nothing.
    api.force_authenticate(other_user)
    own = api.get(f"{TASKS}/statistics").json()
    assert own["total"] == 1
    assert api.get(f"{TASKS}/statistics?user_id={user.pk}").json()["total"] == 0
    api.force_authenticate(staff_user)
    assert api.get(f"{TASKS}/statistics?user_id={user.pk}").json()["total"] == 20


@pytest.mark.django_db
def test_tallied_statistics_read_only_the_tally_tables(user, make_task, django_assert_num_queries):
    make_task("demo.noop")
    with django_assert_num_queries(2) as captured:
        tallied_statistics(owner_ids=[user.pk])
    sql = " ".join(query["sql"] for query in captured.captured_queries)
    tables = {"taskcenter_task", "taskcenter_taskexecution"}
    assert not any(f'"{table}"' in sql or f"{table} " in sql for table in tables), sql


@pytest.mark.django_db
def test_rebuild_tallies_command_checks_and_repairs_drift(make_task):
    from io import StringIO

    from django.core.management import CommandError, call_command

    make_task("demo.noop")
    out = StringIO()
    call_command("rebuild_tallies", "--check", stdout=out)
    assert "1 tasks and 0 timed attempts; 0 tally rows differed" in out.getvalue()

    TaskTally.objects.update(n=5)
    with pytest.raises(CommandError, match="drifted"):
        call_command("rebuild_tallies", "--check", stdout=StringIO())
    assert TaskTally.objects.get().n == 5  # --check wrote nothing

    call_command("rebuild_tallies", stdout=StringIO())
    assert_tallies_match_rows()


# --- shards and the fold --------------------------------------------------------------------


def split_into_shards() -> None:
    """Spread every recounted key over three shards, and add keys whose shards cancel out."""
    rebuild_tallies()
    for model in (TaskTally, DurationTally):
        for row in model.objects.all():
            n = row.n
            model.objects.filter(pk=row.pk).update(n=1)
            for shard, share in ((3, n + 1), (9, -2)):
                row.pk, row.shard, row.n = None, shard, share
                row.save(force_insert=True)
    key = {"owner_id": 424242, "task_type": "gone.kind", "platform": "p"}
    TaskTally.objects.create(**key, status="RUNNING", shard=0, n=-2)
    TaskTally.objects.create(**key, status="RUNNING", shard=4, n=2)
    TaskTally.objects.create(**key, status="QUEUED", shard=0, n=0)
    DurationTally.objects.create(**key, bin=7, shard=5, n=0)


def tasks_with_durations(make_task, other_user) -> None:
    for n in range(6):
        task = make_task("demo.noop", start=True, platform="ab"[n % 2])
        _, execution = lifecycle.claim_attempt(task, worker_id=WORKER)
        lifecycle.complete_attempt(execution, result={})
    make_task("demo.sleep", owner=other_user)


@pytest.mark.django_db
def test_writers_add_to_shard_zero_on_sqlite_and_to_a_shard_of_their_own_on_postgresql(
    make_task,
):
    from django.db import connection

    from taskcenter.models.tally_triggers import SHARDS

    make_task("demo.noop")
    shards = set(TaskTally.objects.values_list("shard", flat=True))
    if connection.vendor == "sqlite":
        assert shards == {0}
    else:
        assert len(shards) == 1
        assert 1 <= shards.pop() <= SHARDS


@pytest.mark.django_db
def test_fold_moves_every_shard_into_shard_zero_and_deletes_keys_of_zero(make_task, other_user):
    tasks_with_durations(make_task, other_user)
    split_into_shards()
    assert_tallies_match_rows()

    report = fold_tallies(batch=2)

    assert_tallies_match_rows()
    for model, counted in ((TaskTally, task_tally), (DurationTally, duration_tally)):
        rows = list(model.objects.values_list("shard", "n"))
        assert {shard for shard, _ in rows} == {0}
        assert all(n for _, n in rows)
        assert len(rows) == len(counted())
    assert report.moved == 2 * (len(task_tally()) + len(duration_tally())) + 2
    assert report.deleted == 2  # the cancelled-out RUNNING key and the QUEUED row of zero
    assert report.busy == 0
    assert fold_tallies().done == 0


@pytest.mark.django_db
def test_fold_stops_after_its_batches_and_the_next_one_carries_on(make_task, other_user):
    tasks_with_durations(make_task, other_user)
    split_into_shards()
    sharded = TaskTally.objects.exclude(shard=0).count()

    report = fold_tallies(batch=2, max_batches=3)

    assert report.batches == 3
    assert 3 <= report.moved <= 6  # a batch of two rows, or what is left of a shard
    assert TaskTally.objects.exclude(shard=0).count() == sharded - report.moved
    assert_tallies_match_rows()
    fold_tallies(batch=2)
    assert not TaskTally.objects.exclude(shard=0).exists()
    assert_tallies_match_rows()


@pytest.mark.django_db
def test_reaper_pass_folds_the_tallies(make_task, other_user):
    from taskcenter.execution import reaper

    tasks_with_durations(make_task, other_user)
    split_into_shards()

    report = reaper.reap()

    assert report.folded > 0
    assert not TaskTally.objects.exclude(shard=0).exists()
    assert not DurationTally.objects.exclude(shard=0).exists()
    assert_tallies_match_rows()


@pytest.mark.django_db
def test_rebuild_tallies_command_folds_and_a_rebuild_leaves_only_shard_zero(make_task, other_user):
    from io import StringIO

    from django.core.management import call_command

    tasks_with_durations(make_task, other_user)
    split_into_shards()
    out = StringIO()
    call_command("rebuild_tallies", "--check", stdout=out)
    assert "0 tally rows differed" in out.getvalue()  # the check sums the shards

    call_command("rebuild_tallies", "--fold", stdout=out)
    assert "Folded" in out.getvalue()
    assert "deleted 2 rows of zero" in out.getvalue()
    assert not TaskTally.objects.exclude(shard=0).exists()

    split_into_shards()
    call_command("rebuild_tallies", stdout=StringIO())
    assert set(TaskTally.objects.values_list("shard", flat=True)) == {0}
    assert set(DurationTally.objects.values_list("shard", flat=True)) == {0}
    assert_tallies_match_rows()
