"""The event feed selects each read's events once per selection, not once per stream: streams
with the same filter (many pages open on one filtered list) share one query."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from taskcenter.api.event_feed import EventFeed, Subscription
from taskcenter.models import Task, TaskEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def feed(monkeypatch) -> EventFeed:
    """A feed read by the test itself (no thread), from the newest event on."""
    monkeypatch.setattr(EventFeed, "_start", lambda self: None)
    feed = EventFeed()
    feed.cursor = TaskEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    return feed


def subscribe(feed: EventFeed, user, tasks=None) -> list[list[int]]:
    received: list[list[int]] = []
    subscription = Subscription(
        user_id=user.pk,
        see_all=False,
        deliver=lambda batch: received.append([event["task_id"] for event in batch or []]),
        tasks=tasks,
    )
    feed.subscribe(subscription)
    return received


def countdowns_of(user):
    return Task.objects.filter(owner=user, task_type="demo.countdown")


def test_streams_with_the_same_filter_share_one_selection_query(feed, user, make_task):
    same_filter = [subscribe(feed, user, countdowns_of(user)) for _ in range(20)]
    other_filter = subscribe(feed, user, Task.objects.filter(owner=user, task_type="demo.noop"))
    unfiltered = subscribe(feed, user)
    countdown = make_task("demo.countdown", parameters={"seconds": 1})
    noop = make_task("demo.noop")

    with CaptureQueriesContext(connection) as queries:
        feed.read()

    selecting = [q["sql"] for q in queries.captured_queries if "IN (SELECT" in q["sql"]]
    assert len(selecting) == 2  # one per filter, not one per stream
    assert all(received == [[countdown.pk]] for received in same_filter)
    assert other_filter == [[noop.pk]]
    assert unfiltered == [[countdown.pk, noop.pk]]


def test_the_same_filter_of_another_owner_is_a_selection_of_its_own(
    feed, user, other_user, make_task
):
    mine = subscribe(feed, user, countdowns_of(user))
    theirs = subscribe(feed, other_user, countdowns_of(other_user))
    own = make_task("demo.countdown", parameters={"seconds": 1}, owner=user)
    other = make_task("demo.countdown", parameters={"seconds": 1}, owner=other_user)

    feed.read()

    assert mine == [[own.pk]]
    assert theirs == [[other.pk]]
