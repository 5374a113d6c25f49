"""``RowInserter`` stores rows exactly as the ORM stores the same values, in either of its
ways (a multi-row INSERT, and COPY for more than a few values on PostgreSQL), and hands back
their ids in row order."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from taskcenter.lib.bulk_insert import RowInserter
from taskcenter.models import Task, TaskEvent

pytestmark = pytest.mark.django_db

AWKWARD = ["", "tab\there", "new\nline", "back\\slash", "\\N", "任务 1", "'quoted'", 'a "b"']
# Every column of a task (the inserter fills in nothing), defaults under the varied values.
FIELDS = [field for field in Task._meta.concrete_fields if not field.primary_key]
COLUMNS = tuple(field.name for field in FIELDS)


def values(index: int, owner_id: int, moment: datetime) -> tuple:
    text = AWKWARD[index % len(AWKWARD)]
    varied = {
        "owner": owner_id,
        "task_type": "demo.noop",
        "name": text,
        "description": text * 3,
        "parameters": {"text": text, "n": index, "nested": [1.5, None, {"k": text}]},
        "status": "PENDING",
        "priority": index % 200 - 100,
        "created_at": moment,
        "updated_at": moment,
        "run_after": moment if index % 2 else None,
        "client_id": index if index % 3 else None,
    }
    return tuple(varied.get(f.name, f.get_default()) for f in FIELDS)


# One row is an INSERT everywhere; more are one INSERT on SQLite and a COPY on PostgreSQL.
@pytest.mark.parametrize("count", [1, 2, 63])
def test_rows_are_stored_as_the_orm_stores_them_and_ids_come_back_in_order(user, count):
    moment = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
    rows = [values(i, user.pk, moment) for i in range(count)]
    inserter = RowInserter(Task, COLUMNS, returning=True)

    ids = inserter.insert(rows)
    by_orm = [
        Task.objects.create(**{f.attname: v for f, v in zip(FIELDS, row, strict=True)})
        for row in rows
    ]

    assert len(ids) == count
    assert ids == sorted(ids)
    for task_id, orm_task, row in zip(ids, by_orm, rows, strict=True):
        ours = Task.objects.filter(pk=task_id).values().get()
        theirs = Task.objects.filter(pk=orm_task.pk).values().get()
        assert {**ours, "id": None} == {**theirs, "id": None}
        assert ours["name"] == row[COLUMNS.index("name")]  # each id is its own row's
        assert ours["created_at"] == moment


def test_rows_without_returning_share_objects_and_take_nulls(user):
    task = Task.objects.create(owner=user, task_type="demo.noop")
    shared: dict = {}
    moment = datetime(2026, 1, 2, tzinfo=UTC)
    columns = ("task", "actor_user", "actor", "verb", "from_status", "to_status", "data", "at")
    rows = [(task.pk, None, f"actor {i}", "created", "", "", shared, moment) for i in range(60)]

    assert RowInserter(TaskEvent, columns, returning=False).insert(rows) == []

    stored = list(TaskEvent.objects.filter(task=task).values_list("actor", "data", "actor_user"))
    assert stored == [(f"actor {i}", {}, None) for i in range(60)]


def test_inserting_no_rows_does_nothing(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert RowInserter(Task, COLUMNS, returning=True).insert([]) == []
