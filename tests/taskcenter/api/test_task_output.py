"""A task list writes every moment as DRF's date-time field writes it, shared or not."""

from __future__ import annotations

import datetime

from rest_framework import serializers

from taskcenter.api.serializers import TaskSerializer
from taskcenter.models import Task

MOMENT = datetime.datetime(2026, 12, 2, 10, 30, 5, 123456, tzinfo=datetime.UTC)
# The same instant in another zone, and other instants.
SAME_ELSEWHERE = MOMENT.astimezone(datetime.timezone(datetime.timedelta(hours=9)))
LATER = MOMENT + datetime.timedelta(microseconds=1)


def test_shared_and_distinct_moments_are_written_as_drf_writes_them(user, make_task):
    tasks = [make_task() for _ in range(4)]
    moments = [
        (MOMENT, MOMENT, None),
        (SAME_ELSEWHERE, LATER, MOMENT),
        (LATER, SAME_ELSEWHERE, LATER),
        (MOMENT, None, SAME_ELSEWHERE),
    ]
    for task, (created, started, finished) in zip(tasks, moments, strict=True):
        task.created_at, task.started_at, task.finished_at = created, started, finished
    drf = serializers.DateTimeField()
    written = TaskSerializer(tasks, many=True).data
    for item, (created, started, finished) in zip(written, moments, strict=True):
        assert item["created_at"] == drf.to_representation(created)
        assert item["started_at"] == (started and drf.to_representation(started))
        assert item["finished_at"] == (finished and drf.to_representation(finished))
    assert written[0]["created_at"] == "2026-12-02T10:30:05.123456Z"
    assert written[1]["started_at"] == "2026-12-02T10:30:05.123457Z"
    assert written[1]["created_at"] == written[0]["created_at"]  # the same instant, in UTC


def test_each_response_writes_its_own_tasks(user, make_task):
    first, second = make_task(), make_task()
    Task.objects.filter(pk=second.pk).update(created_at=LATER)
    second.refresh_from_db()
    assert (
        TaskSerializer([first], many=True).data[0]["created_at"]
        != (TaskSerializer([second], many=True).data[0]["created_at"])
    )
    assert TaskSerializer(second).data["created_at"] == "2026-12-02T10:30:05.123457Z"
