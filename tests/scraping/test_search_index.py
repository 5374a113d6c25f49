"""The SQLite trigram index behind result search: same answers as without it, kept current."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scraping.models import ScrapeResult
from scraping.search_index import (
    INDEX,
    TRIGGERS,
    drop_search_index,
    ensure_search_index,
    has_search_index,
)

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif("connection.vendor != 'sqlite'", reason="the index is SQLite's"),
]

SEARCH = "/api/v1/tasks/search/results"
ROWS = [
    {"text": "Tesla is the FUTURE", "username": "elonmusk", "user": {"username": "elonmusk"}},
    {"text": 'He said "tesla" twice', "username": "quoter"},
    {"text": "back\\slash tesla", "username": "slasher"},
    {"text": "Café crème à Paris", "username": "parisien"},
    {"text": "50% off_today", "username": "shop"},
    {"text": "plain", "user": {"name": "Elon Musk", "tags": ["a", "b"]}, "verified": True},
    {"text": "numbers", "count": 1500, "ratio": 0.25, "big": 1e20, "neg": -7},
    {"text": "time 10:30 here", "username": "clock"},
]
QUERIES = [
    "username:elonmusk,text:tesla",
    "text:TESLA",
    'text:"tesla"',
    "text:said",
    "text:\\slash",
    "text:café",
    "text:CAFÉ",
    "text:crème à",
    "text:50%",
    "text:off_t",
    "user.name:elon musk",
    "user:elon",
    'user:"username"',
    "user.tags:a",
    "verified:true",
    "verified:tru",
    "count:150",
    "count:1500",
    "ratio:0.25",
    "big:1e+20",
    "big:1.0e",
    "neg:-7",
    "text:10:30",
    "text:me 10",
    "username:zzz",
    "text:pl",
]


def ids(api, query: str) -> list[int]:
    response = api.get(SEARCH, {"query": query, "limit": 1000})
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["items"]]


@pytest.fixture
def rows(make_task) -> list[ScrapeResult]:
    task = make_task("USER_TWEETS", {"username": "elonmusk"})
    ScrapeResult.objects.bulk_create(ScrapeResult(task=task, data=data) for data in ROWS)
    return list(ScrapeResult.objects.order_by("id"))


def test_migrations_leave_the_index_and_its_triggers_in_place():
    assert has_search_index(connection)
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE name LIKE %s", [f"{INDEX}%"])
        names = {name for (name,) in cursor.fetchall()}
    assert {INDEX, *TRIGGERS} <= names


def test_search_uses_the_index_and_answers_exactly_as_a_full_read(api, rows):
    with CaptureQueriesContext(connection) as captured:
        assert ids(api, "username:elonmusk,text:tesla") == [rows[0].pk]
    assert any(INDEX in query["sql"] for query in captured.captured_queries)

    indexed = {query: ids(api, query) for query in QUERIES}
    connection._scrape_search_index = False  # the same searches, reading every row
    try:
        read_all = {query: ids(api, query) for query in QUERIES}
    finally:
        connection._scrape_search_index = None
    assert indexed == read_all
    assert indexed["text:café"] == indexed["text:crème à"] == [rows[3].pk]
    assert indexed['text:"tesla"'] == [rows[1].pk]
    assert indexed["user:elon"] == [rows[0].pk, rows[5].pk]
    assert indexed["text:10:30"] == [rows[7].pk]


def test_the_index_follows_deletes_and_updates(api, rows, make_task):
    ScrapeResult.objects.filter(pk=rows[0].pk).update(data={"text": "now about rockets"})
    assert ids(api, "text:tesla") == [rows[1].pk, rows[2].pk]
    assert ids(api, "text:rockets") == [rows[0].pk]

    api.delete(f"/api/v1/tasks/{rows[0].task_id}")

    assert ids(api, "text:tesla") == []
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {INDEX} WHERE data LIKE '%%tesla%%'")  # noqa: S608
        assert cursor.fetchone() == (0,)


def test_lost_triggers_are_put_back_and_the_index_rebuilt(api, rows, make_task):
    # What SQLite's table rebuild (an altering migration) does to triggers.
    with connection.cursor() as cursor:
        for name in TRIGGERS:
            cursor.execute(f'DROP TRIGGER "{name}"')
    task = make_task("USER_TWEETS", {"username": "elonmusk"})
    late = ScrapeResult.objects.create(task=task, data={"text": "written while unindexed"})
    assert ids(api, "text:unindexed") == []  # the stale index hides it...

    assert ensure_search_index(connection)

    assert ids(api, "text:unindexed") == [late.pk]  # ...until the rebuild


def test_without_the_index_search_still_works(api, rows):
    drop_search_index(connection)
    assert not has_search_index(connection)
    assert ids(api, "username:elonmusk,text:tesla") == [rows[0].pk]
    assert ensure_search_index(connection)
    assert ids(api, "username:elonmusk,text:tesla") == [rows[0].pk]
