"""List endpoints: the page envelope, its limits, every filter, ordering and query counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from taskcenter import lifecycle
from taskcenter.models import Task
from tests.support.queries import view_queries

pytestmark = pytest.mark.django_db

TASKS = "/api/v1/tasks"


def ids(response) -> set[int]:
    assert response.status_code == 200, response.json()
    return {item["id"] for item in response.json()["items"]}


def first_loc(response) -> list:
    assert response.status_code == 400, response.content
    return response.json()["detail"][0]["loc"]


# --- pagination -------------------------------------------------------------------------------


def test_pagination_envelope(api, make_task):
    for _ in range(45):
        make_task()
    data = api.get(TASKS).json()
    assert (data["total"], data["page"], data["size"], data["pages"]) == (45, 1, 20, 3)
    assert len(data["items"]) == 20
    last = api.get(f"{TASKS}?page=3&size=20").json()
    assert len(last["items"]) == 5
    past_the_end = api.get(f"{TASKS}?page=99").json()
    assert past_the_end["items"] == []
    assert past_the_end["total"] == 45
    assert len(api.get(f"{TASKS}?size=100").json()["items"]) == 45


@pytest.mark.parametrize(
    ("query", "loc"),
    [
        ("size=101", ["size"]),
        ("size=0", ["size"]),
        ("size=-1", ["size"]),
        ("size=abc", ["size"]),
        ("page=0", ["page"]),
        ("page=1.5", ["page"]),
        (f"page={'9' * 40}", ["page"]),
    ],
)
def test_bad_page_parameters_are_400(api, query, loc):
    response = api.get(f"{TASKS}?{query}")
    assert first_loc(response) == loc


# --- filters ------------------------------------------------------------------------------------


def test_status_filter_single_comma_and_repeated(api, make_task):
    pending = make_task()
    failed = make_task()
    lifecycle.cancel_task(failed)
    queued = make_task(start=True)
    assert ids(api.get(f"{TASKS}?status=PENDING")) == {pending.pk}
    assert ids(api.get(f"{TASKS}?status=PENDING,CANCELLED")) == {pending.pk, failed.pk}
    assert ids(api.get(f"{TASKS}?status=QUEUED&status=cancelled")) == {queued.pk, failed.pk}
    assert first_loc(api.get(f"{TASKS}?status=DONE")) == ["status"]


def test_field_filters(api, make_task, user):
    a = make_task(
        "demo.countdown",
        platform="x",
        action="scrape",
        account_id="acc-1",
        proxy_id="p-1",
        external_id="ext-1",
        batch_id="b-1",
    )
    b = make_task("demo.noop", platform="y")
    assert ids(api.get(f"{TASKS}?task_type=demo.countdown")) == {a.pk}
    assert ids(api.get(f"{TASKS}?task_type=demo.countdown,demo.noop")) == {a.pk, b.pk}
    assert ids(api.get(f"{TASKS}?platform=y")) == {b.pk}
    assert ids(api.get(f"{TASKS}?action=scrape")) == {a.pk}
    assert ids(api.get(f"{TASKS}?account_id=acc-1")) == {a.pk}
    assert ids(api.get(f"{TASKS}?proxy_id=p-1")) == {a.pk}
    assert ids(api.get(f"{TASKS}?external_id=ext-1")) == {a.pk}
    assert ids(api.get(f"{TASKS}?batch_id=b-1")) == {a.pk}
    assert ids(api.get(f"{TASKS}?owner=alice")) == {a.pk, b.pk}
    assert ids(api.get(f"{TASKS}?user_id={user.pk}")) == {a.pk, b.pk}
    # The XGet scraper API filters by user_id=user-789: a username is taken too; an unknown one
    # is no one.
    assert ids(api.get(f"{TASKS}?user_id=alice")) == {a.pk, b.pk}
    assert ids(api.get(f"{TASKS}?user_id=nobody")) == set()


def test_time_range_filters_iso_and_epoch(api, make_task):
    old = make_task()
    new = make_task()
    base = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
    Task.objects.filter(pk=old.pk).update(created_at=base, finished_at=base + timedelta(hours=1))
    Task.objects.filter(pk=new.pk).update(created_at=base + timedelta(days=2))
    epoch = int((base + timedelta(days=1)).timestamp())
    assert ids(api.get(f"{TASKS}?created_after=2024-01-16T00:00:00Z")) == {new.pk}
    assert ids(api.get(f"{TASKS}?created_before=2024-01-16")) == {old.pk}
    assert ids(api.get(f"{TASKS}?created_after={epoch}")) == {new.pk}
    assert ids(api.get(f"{TASKS}?created_before={epoch}.5")) == {old.pk}
    assert ids(api.get(f"{TASKS}?finished_after=2024-01-15T10:30:00%2B00:00")) == {old.pk}
    assert ids(api.get(f"{TASKS}?finished_before=2024-01-15T10:30:00Z")) == set()
    # Offsets PostgreSQL would refuse are converted to UTC first.
    assert ids(api.get(f"{TASKS}?created_after=2024-01-16T22:20:00%2B22:20")) == {new.pk}


@pytest.mark.parametrize(
    ("query", "loc"),
    [
        ("created_after=yesterday", ["created_after"]),
        ("created_after=2024-13-45", ["created_after"]),
        ("created_before=99999999999999", ["created_before"]),
        ("created_before=0001-01-01T00:00:00%2B05:00", ["created_before"]),
        ("finished_after=%00", ["finished_after"]),
        ("user_id=not%20a%20username", ["user_id"]),
        (f"user_id={'9' * 30}", ["user_id"]),
        ("ordering=password", ["ordering"]),
        ("account_id=a%00b", ["account_id"]),
        ("owner=%00", ["owner"]),
        ("task_type=demo%00noop", ["task_type"]),
        ("platform=a,%00", ["platform"]),
    ],
)
def test_odd_filter_values_are_400(api, query, loc):
    assert first_loc(api.get(f"{TASKS}?{query}")) == loc


def test_ordering(api, make_task):
    low = make_task(priority=-5)
    high = make_task(priority=50)
    items = api.get(f"{TASKS}?ordering=-priority").json()["items"]
    assert [t["id"] for t in items] == [high.pk, low.pk]
    items = api.get(f"{TASKS}?ordering=priority").json()["items"]
    assert [t["id"] for t in items] == [low.pk, high.pk]
    tied = [make_task(priority=1) for _ in range(3)]
    pages = [api.get(f"{TASKS}?ordering=priority&size=1&page={n}").json() for n in (2, 3, 4)]
    assert [p["items"][0]["id"] for p in pages] == [t.pk for t in reversed(tied)]


@pytest.mark.skipif(
    connection.vendor != "sqlite", reason="SQLite's plans are fixed; PostgreSQL's follow its stats"
)
@pytest.mark.parametrize(
    "filters", [{}, {"status": "PENDING"}, {"status": "PENDING", "platform": ""}]
)
def test_a_page_of_tasks_submitted_together_is_read_off_an_index_not_sorted(
    user, staff_user, filters
):
    """One ``create_tasks`` call gives its tasks one ``created_at``: the list's tie-break (``id``)
    is in its indexes, so a page is read in order instead of sorting every tied task."""
    made = lifecycle.create_tasks([{"task_type": "demo.noop"}] * 50, owner=user)
    assert {task.created_at for task in made} == {made[0].created_at}
    for owner in (user, staff_user):
        pages = Task.objects.visible_to(owner).filter(**filters).order_by("-created_at", "-id")
        plan = pages[:20].explain()
        assert "TEMP B-TREE" not in plan, plan
        assert [task.pk for task in pages[:3]] == [task.pk for task in reversed(made)][:3]


# --- query counts -------------------------------------------------------------------------------


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(view_queries(queries))


def add_rows(make_task, n: int, staff_user) -> None:
    for _ in range(n):
        task = make_task("demo.noop", start=True)
        _, execution = lifecycle.claim_attempt(task, worker_id="w")
        lifecycle.complete_attempt(execution)
        make_task(owner=staff_user)


@pytest.mark.parametrize(
    "url",
    [
        TASKS,
        f"{TASKS}?status=COMPLETED,PENDING&ordering=-priority",
        f"{TASKS}/statistics",
        "/api/v1/task-executions",
        "/api/v1/task-executions?status=COMPLETED",
    ],
)
def test_query_count_does_not_grow_with_rows(api, staff_api, make_task, staff_user, url):
    add_rows(make_task, 2, staff_user)
    few = count_queries(api, url), count_queries(staff_api, url)
    add_rows(make_task, 15, staff_user)
    many = count_queries(api, url), count_queries(staff_api, url)
    assert few == many


def test_query_count_of_task_detail_views(api, make_task, staff_user):
    task = make_task("demo.flaky", {"fail_times": 50}, start=True, max_attempts=100)
    urls = [f"{TASKS}/{task.pk}/events", f"/api/v1/task-executions/task/{task.pk}"]
    before = [count_queries(api, url) for url in urls]
    for _ in range(5):
        _, execution = lifecycle.claim_attempt(task, worker_id="w")
        lifecycle.fail_attempt(execution, error="x")
    assert [count_queries(api, url) for url in urls] == before
