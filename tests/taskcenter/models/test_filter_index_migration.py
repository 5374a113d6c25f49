"""The task's filter columns keep one index each, without PostgreSQL's pattern-ops twins, and an
execution's task is indexed by its (task, attempt) key alone, an event's user only where set; the
migration renames in place and goes back."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from taskcenter.models import Task, TaskEvent
from taskcenter.models.tasks import FILTER_COLUMN_INDEXES
from tests.support.migrations import migrated_back_to

BEFORE = [("taskcenter", "0019_fewer_index_pages_per_submission")]


def _single_column_indexes(table: str) -> dict[str, str]:
    """Index name -> column, for the non-unique indexes of ``table`` on one column."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {
        name: info["columns"][0]
        for name, info in constraints.items()
        if info["index"] and len(info["columns"]) == 1 and not info["unique"]
    }


def _pattern_indexes(table: str) -> set[str]:
    if connection.vendor != "postgresql":
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexdef LIKE %s",
            [table, "%pattern_ops%"],
        )
        return {name for (name,) in cursor.fetchall()}


def _plan(sql: str, params: list) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A handful of rows: without this the planner rightly scans the table.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + sql, params)
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        return " ".join(str(row) for row in cursor.fetchall())


@pytest.mark.django_db(transaction=True)
def test_filter_columns_keep_one_index_each_and_the_migration_goes_back(user):
    with migrated_back_to(BEFORE) as steps:
        old = steps.old_apps
        OldTask = old.get_model("taskcenter", "Task")
        before = OldTask.objects.create(owner_id=user.pk, task_type="demo.noop", account_id="acc-1")
        assert len(_pattern_indexes("taskcenter_task")) == (
            len(FILTER_COLUMN_INDEXES) if connection.vendor == "postgresql" else 0
        )
        assert "task_id" in _single_column_indexes("taskcenter_taskexecution").values()
        event_indexes = _single_column_indexes("taskcenter_taskevent")
        assert "actor_user_id" in event_indexes.values()
        assert "event_actor_user_idx" not in event_indexes

        steps.forward()

        indexes = _single_column_indexes("taskcenter_task")
        for column, name in FILTER_COLUMN_INDEXES.items():
            assert indexes.get(name) == column
            assert sorted(n for n, c in indexes.items() if c == column) == [name]
        assert _pattern_indexes("taskcenter_task") == set()
        assert "task_id" not in _single_column_indexes("taskcenter_taskexecution").values()
        # The rows are untouched and a filter by account still reads the account's index.
        assert Task.objects.get(pk=before.pk).account_id == "acc-1"
        with transaction.atomic():
            query = Task.objects.filter(account_id="acc-1").values("pk").query
            sql, params = query.sql_with_params()
            assert "task_account_idx" in _plan(sql, list(params))
            # Deleting a user sets its events' user to NULL through this index.
            query = TaskEvent.objects.filter(actor_user=user).values("pk").query
            sql, params = query.sql_with_params()
            assert "event_actor_user_idx" in _plan(sql, list(params))
        event_indexes = _single_column_indexes("taskcenter_taskevent")
        assert [n for n, c in event_indexes.items() if c == "actor_user_id"] == [
            "event_actor_user_idx"
        ]

        steps.back()
        indexes = _single_column_indexes("taskcenter_task")
        assert not set(FILTER_COLUMN_INDEXES.values()) & set(indexes)
        assert len(_pattern_indexes("taskcenter_task")) == (
            len(FILTER_COLUMN_INDEXES) if connection.vendor == "postgresql" else 0
        )
        assert "task_id" in _single_column_indexes("taskcenter_taskexecution").values()
        assert "event_actor_user_idx" not in _single_column_indexes("taskcenter_taskevent")
