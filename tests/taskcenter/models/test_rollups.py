"""The charts' per-minute rollups: folded by the reaper from the tasks that finished, exact per
minute, idempotent, and frozen once a minute has settled (the cursor survives)."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from django.db import connection, transaction
from django.utils import timezone

from taskcenter import lifecycle
from taskcenter.execution import reaper
from taskcenter.models import (
    DurationRollup,
    QueueDepthSample,
    RollupCursor,
    Status,
    Task,
    TaskExecution,
    ThroughputRollup,
)
from taskcenter.models.rollup_fold import (
    ADVISORY_LOCK,
    FIRST_FOLD,
    MAX_SPAN,
    RETENTION,
    SETTLE,
    floor_minute,
    fold_rollups,
    fold_to_now,
)
from taskcenter.models.tally_triggers import duration_bin
from tests.support.lifecycle import task_in
from tests.taskcenter.models.test_tally_shards import Background

pytestmark = pytest.mark.django_db

NOW = floor_minute(timezone.now()) + dt.timedelta(seconds=20)
M1 = floor_minute(NOW) - dt.timedelta(minutes=30)
M2 = M1 + dt.timedelta(minutes=1)


def finished(make_task, status: str, at: dt.datetime, *, duration: float | None = None, **fields):
    """A task brought to ``status`` by the lifecycle, dated to have finished ``at``."""
    task = task_in(status, make_task, **fields)
    Task.objects.filter(pk=task.pk).update(finished_at=at)
    if duration is not None:
        TaskExecution.objects.filter(task=task).update(duration=duration)
    return task


def rollup_rows() -> list[tuple]:
    return list(
        ThroughputRollup.objects.order_by("minute", "task_type", "platform").values_list(
            "minute",
            "task_type",
            "platform",
            "completed",
            "failed",
            "cancelled",
            "timed",
            "duration_sum",
        )
    )


def histogram_rows() -> list[tuple]:
    return list(
        DurationRollup.objects.order_by("minute", "task_type", "bin").values_list(
            "minute", "task_type", "bin", "n"
        )
    )


@pytest.fixture
def history(make_task):
    """Tasks that finished in two minutes half an hour ago, of two platforms."""
    finished(make_task, Status.COMPLETED, M1 + dt.timedelta(seconds=1), duration=1.0)
    finished(make_task, Status.COMPLETED, M1 + dt.timedelta(seconds=59), duration=3.0)
    finished(make_task, Status.FAILED, M1 + dt.timedelta(seconds=30), platform="douyin")
    finished(make_task, Status.COMPLETED, M2, duration=0.5, platform="douyin")
    finished(make_task, Status.CANCELLED, M2 + dt.timedelta(seconds=5))
    finished(make_task, Status.FAILED, M2 + dt.timedelta(seconds=6))
    # Not finished: counted nowhere.
    task_in(Status.QUEUED, make_task)
    task_in(Status.RUNNING, make_task)


def test_fold_counts_exactly_the_tasks_finished_in_each_minute(history):
    fold_to_now(now=NOW)

    assert rollup_rows() == [
        (M1, "demo.noop", "", 2, 0, 0, 2, 4.0),
        (M1, "demo.noop", "douyin", 0, 1, 0, 0, 0.0),
        (M2, "demo.noop", "", 0, 1, 1, 0, 0.0),
        (M2, "demo.noop", "douyin", 1, 0, 0, 1, 0.5),
    ]
    assert histogram_rows() == sorted(
        [
            (M1, "demo.noop", duration_bin(1.0), 1),
            (M1, "demo.noop", duration_bin(3.0), 1),
            (M2, "demo.noop", duration_bin(0.5), 1),
        ]
    )
    assert RollupCursor.objects.get().folded_until == floor_minute(NOW)
    sample = QueueDepthSample.objects.get()
    assert (sample.minute, sample.queued, sample.running) == (floor_minute(NOW), 1, 1)


def test_folding_twice_gives_the_same_rows(history):
    fold_to_now(now=NOW)
    rows, histogram = rollup_rows(), histogram_rows()

    fold_rollups(now=NOW)
    assert (rollup_rows(), histogram_rows()) == (rows, histogram)

    # Even a full recount from scratch over the same span lands on the same rows.
    RollupCursor.objects.all().delete()
    fold_to_now(now=NOW)
    assert (rollup_rows(), histogram_rows()) == (rows, histogram)
    assert QueueDepthSample.objects.count() == 1


def test_settled_minutes_survive_pruned_tasks_and_recent_ones_follow_late_commits(
    history, make_task
):
    fold_to_now(now=NOW)
    rows = rollup_rows()

    # The old tasks are deleted (prune_tasks): the cursor is past their minutes, which stay.
    for task_id in Task.objects.filter(finished_at__lt=M2 + dt.timedelta(minutes=1)).values_list(
        "pk", flat=True
    ):
        lifecycle.delete_task(task_id)
    # A task whose commit came after the last pass, dated inside the settling window.
    recent = floor_minute(NOW) - SETTLE + dt.timedelta(seconds=10)
    finished(make_task, Status.COMPLETED, recent, duration=2.0)

    later = NOW + dt.timedelta(seconds=30)
    report = fold_rollups(now=later)

    assert report.start == floor_minute(NOW) - SETTLE
    assert rollup_rows() == [
        *rows,
        (floor_minute(recent), "demo.noop", "", 1, 0, 0, 1, 2.0),
    ]
    assert RollupCursor.objects.get().folded_until == floor_minute(later)


def test_a_pass_catches_up_by_bounded_spans_and_prunes_past_retention(make_task):
    old = floor_minute(NOW) - RETENTION - dt.timedelta(hours=1)
    ThroughputRollup.objects.create(minute=old, task_type="demo.noop", platform="", completed=5)
    early = floor_minute(NOW) - dt.timedelta(hours=5)
    finished(make_task, Status.COMPLETED, early, duration=1.0)
    finished(make_task, Status.COMPLETED, M1, duration=1.0)

    first = fold_rollups(now=NOW)
    assert first.start == floor_minute(NOW) - FIRST_FOLD - SETTLE  # a fresh installation
    # The quiet day before the first finished task is passed over, then one hour of tasks.
    assert first.end == early + MAX_SPAN
    assert first.pruned == 1
    assert not ThroughputRollup.objects.filter(minute=old).exists()

    # The quiet hours from there to M1 are passed over too: one more pass reaches now.
    reports = fold_to_now(now=NOW)
    assert [report.end for report in reports] == [floor_minute(NOW)]
    assert rollup_rows() == [
        (early, "demo.noop", "", 1, 0, 0, 1, 1.0),
        (M1, "demo.noop", "", 1, 0, 0, 1, 1.0),
    ]


def test_the_reaper_folds_rollups_on_every_pass(make_task):
    task_in(Status.QUEUED, make_task)
    RollupCursor.objects.create(
        name="throughput", folded_until=floor_minute(timezone.now()) - dt.timedelta(minutes=5)
    )
    finished(
        make_task,
        Status.COMPLETED,
        floor_minute(timezone.now()) - dt.timedelta(minutes=2),
        duration=1.0,
    )

    report = reaper.reap()

    assert report.rolled_up == 1
    assert ThroughputRollup.objects.get().completed == 1
    assert QueueDepthSample.objects.get().queued == 1


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="SQLite has one writer at a time")
@pytest.mark.django_db(transaction=True)
def test_a_second_fold_at_the_same_moment_skips_its_pass_without_waiting(make_task):
    finished(make_task, Status.COMPLETED, M1, duration=1.0)
    holding, release = threading.Event(), threading.Event()
    background = Background()

    def fold_held_open() -> None:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_LOCK])
            holding.set()
            release.wait(timeout=30)

    background.start(fold_held_open)
    try:
        assert holding.wait(timeout=30)
        started = time.monotonic()
        report = fold_rollups(now=NOW)
        assert time.monotonic() - started < 5
    finally:
        release.set()
        background.join()

    assert report.busy
    assert not ThroughputRollup.objects.exists()
    assert not RollupCursor.objects.exists()
    fold_to_now(now=NOW)
    assert rollup_rows() == [(M1, "demo.noop", "", 1, 0, 0, 1, 1.0)]
