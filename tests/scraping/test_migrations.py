"""Scrape tasks made under the old kind names get the XGet scraper API's names when the app
migrates."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from taskcenter.models import Task

BEFORE = [("scraping", "0001_initial")]


@pytest.mark.django_db(transaction=True)
def test_old_scrape_kind_names_are_renamed_and_back(user):
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(BEFORE)
    try:
        old = Task.objects.create(owner=user, task_type="scrape.user_followers")
        other = Task.objects.create(owner=user, task_type="demo.noop")

        executor = MigrationExecutor(connection)
        executor.migrate(latest)
        assert Task.objects.get(pk=old.pk).task_type == "USER_FOLLOWERS"
        assert Task.objects.get(pk=other.pk).task_type == "demo.noop"

        executor = MigrationExecutor(connection)
        executor.migrate(BEFORE)
        assert Task.objects.get(pk=old.pk).task_type == "scrape.user_followers"
    finally:
        MigrationExecutor(connection).migrate(latest)
