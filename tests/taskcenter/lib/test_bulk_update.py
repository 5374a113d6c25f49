"""``RowUpdater`` gives each row its own values in one statement, stores them exactly as
``QuerySet.update`` stores the same values, and counts only the rows its conditions match."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from taskcenter.lib.bulk_update import RowUpdater
from taskcenter.models import Status, Task

pytestmark = pytest.mark.django_db

RESULTS = [{"k": "任务 'q'", "n": [1.5, None]}, ["a", 2], "plain \\N text", 7, None, True]
UPDATER = RowUpdater(
    Task,
    match=("id", "total_attempts"),
    values=("result", "progress_message"),
    constants=("status", "finished_at"),
    conditions=("status",),
)


def test_each_row_gets_its_own_values_as_the_orm_would_store_them(make_task):
    ours = [make_task(start=True) for _ in RESULTS]
    twins = [make_task(start=True) for _ in RESULTS]
    moment = datetime(2026, 3, 4, 5, 6, 7, 891_000, tzinfo=UTC)

    rows = [
        (t.pk, t.total_attempts, r, f"row {i}")
        for i, (t, r) in enumerate(zip(ours, RESULTS, strict=True))
    ]
    matched = UPDATER.update(
        rows,
        set={"status": Status.COMPLETED.value, "finished_at": moment},
        where={"status": Status.QUEUED.value},
    )
    for index, (twin, result) in enumerate(zip(twins, RESULTS, strict=True)):
        Task.objects.filter(pk=twin.pk).update(
            result=result,
            progress_message=f"row {index}",
            status=Status.COMPLETED,
            finished_at=moment,
        )

    assert matched == len(RESULTS)
    stored = Task.objects.in_bulk([t.pk for t in ours + twins])
    for task, twin, result in zip(ours, twins, RESULTS, strict=True):
        ours_now, twin_now = stored[task.pk], stored[twin.pk]
        assert ours_now.result == twin_now.result == result
        assert ours_now.progress_message == twin_now.progress_message
        assert ours_now.status == Status.COMPLETED
        assert ours_now.finished_at == twin_now.finished_at == moment


def test_rows_the_conditions_do_not_match_are_left_alone_and_not_counted(make_task):
    queued, pending = make_task(start=True), make_task()
    stale = make_task(start=True)

    matched = UPDATER.update(
        [
            (queued.pk, queued.total_attempts, {"ok": 1}, "a"),
            (pending.pk, pending.total_attempts, {"ok": 2}, "b"),  # not QUEUED
            (stale.pk, stale.total_attempts + 1, {"ok": 3}, "c"),  # another attempt's number
            (999_999, 0, {"ok": 4}, "d"),  # no such task
        ],
        set={"status": Status.COMPLETED.value, "finished_at": datetime.now(UTC)},
        where={"status": Status.QUEUED.value},
    )

    assert matched == 1
    statuses = dict(Task.objects.values_list("pk", "status"))
    assert statuses == {
        queued.pk: Status.COMPLETED,
        pending.pk: Status.PENDING,
        stale.pk: Status.QUEUED,
    }
    assert Task.objects.get(pk=pending.pk).result is None


def test_no_rows_is_no_statement(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert UPDATER.update([], set={"status": "X", "finished_at": None}) == 0
