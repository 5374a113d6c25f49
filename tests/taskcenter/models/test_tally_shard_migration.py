"""The tally shard column migrates in and out keeping every count, with working triggers."""

from __future__ import annotations

from collections import Counter

import pytest
from django.db import connection

from taskcenter.models import Status, TaskTally
from tests.support.migrations import migrated_back_to
from tests.taskcenter.models.test_tallies import (
    assert_tallies_match_rows,
    split_into_shards,
    tasks_with_durations,
)

BEFORE = [("taskcenter", "0012_quota_moves_to_its_own_app")]


def old_tallies_match_rows(apps) -> None:
    """Under the old schema: one row per key, each equal to a recount of the task table."""
    Task = apps.get_model("taskcenter", "Task")
    TaskTally = apps.get_model("taskcenter", "TaskTally")
    key = ("owner_id", "status", "task_type", "platform")
    rows = list(TaskTally.objects.values_list(*key, "n"))
    assert len(rows) == len({tuple(row[:-1]) for row in rows})
    assert Counter({tuple(k): n for *k, n in rows if n}) == Counter(Task.objects.values_list(*key))


@pytest.mark.django_db(transaction=True)
def test_tally_shards_migrate_back_folding_every_shard_and_forward_again(make_task, other_user):
    tasks_with_durations(make_task, other_user)
    split_into_shards()
    with migrated_back_to(BEFORE) as steps:
        with connection.cursor() as cursor:
            columns = connection.introspection.get_table_description(cursor, "taskcenter_tasktally")
        assert "shard" not in {column.name for column in columns}
        old = steps.old_apps
        old_tallies_match_rows(old)
        # The old triggers are back and counting.
        old.get_model("taskcenter", "Task").objects.filter(platform="a").update(
            status=Status.FAILED
        )
        old_tallies_match_rows(old)

        steps.forward()

        assert set(TaskTally.objects.values_list("shard", flat=True)) == {0}
        assert_tallies_match_rows()
        tasks_with_durations(make_task, other_user)  # today's triggers write again
        assert_tallies_match_rows()
