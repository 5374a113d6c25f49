"""Scrape tasks made under the old kind names get the XGet scraper API's names when the app
migrates."""

from __future__ import annotations

import pytest

from taskcenter.models import Task
from tests.support.migrations import migrated_back_to

BEFORE = [("scraping", "0001_initial")]


@pytest.mark.django_db(transaction=True)
def test_old_scrape_kind_names_are_renamed_and_back(user):
    with migrated_back_to(BEFORE) as steps:
        old = Task.objects.create(owner=user, task_type="scrape.user_followers")
        other = Task.objects.create(owner=user, task_type="demo.noop")

        steps.forward()
        assert Task.objects.get(pk=old.pk).task_type == "USER_FOLLOWERS"
        assert Task.objects.get(pk=other.pk).task_type == "demo.noop"

        steps.back()
        assert Task.objects.get(pk=old.pk).task_type == "scrape.user_followers"
