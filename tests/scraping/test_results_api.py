"""The XGet scraper API's result routes: task results, search over results, streamed JSON and
CSV export."""

from __future__ import annotations

import csv
import io
import json

import pytest
import requests
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext

from scraping.models import ScrapeResult
from taskcenter.execution.runner import run_attempt
from taskcenter.models import Task
from taskcenter.models.tokens import ApiToken
from tests.support.asgi_server import asgi_server
from tests.support.queries import view_queries

pytestmark = pytest.mark.django_db

TASKS = "/api/v1/tasks"
SEARCH = f"{TASKS}/search/results"

TWEETS = [
    {"text": "Hello world!", "user": {"username": "elonmusk", "name": "Elon Musk"}, "n": 1},
    {"text": "Tesla is the FUTURE", "user": {"username": "elonmusk"}, "n": 10},
    {"text": "tesla rocks", "user": {"username": "someone"}, "n": 2, "verified": True},
]


def add_rows(task: Task, datas: list, data_type: str = "tweet") -> list[ScrapeResult]:
    rows = [
        ScrapeResult(task=task, data_type=data_type, data=data, metadata={"source": "t"})
        for data in datas
    ]
    ScrapeResult.objects.bulk_create(rows)
    return list(ScrapeResult.objects.filter(task=task).order_by("id"))


def loc(response) -> list:
    assert response.status_code == 400, response.content
    return response.json()["detail"][0]["loc"]


def body(response) -> str:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content).decode()


# --- GET /tasks/{id}/results ------------------------------------------------------------------


def test_results_shape_and_envelope(api, make_task):
    task = make_task()
    rows = add_rows(task, TWEETS)
    response = api.get(f"{TASKS}/{task.pk}/results")
    assert response.status_code == 200, response.content
    page = response.json()
    assert {k: page[k] for k in ("total", "page", "size", "pages")} == {
        "total": 3,
        "page": 1,
        "size": 100,
        "pages": 1,
    }
    first = page["items"][0]
    assert set(first) == {"id", "task_id", "data_type", "data", "metadata", "created_at"}
    assert first["id"] == rows[0].pk
    assert first["task_id"] == task.pk
    assert first["data_type"] == "tweet"
    assert first["data"] == TWEETS[0]
    assert first["metadata"] == {"source": "t"}
    assert [item["id"] for item in page["items"]] == [r.pk for r in rows]


def test_results_of_a_real_run(api, make_task):
    task = make_task("demo.items", {"count": 5, "page_size": 2}, start=True)
    run_attempt(task.pk, worker_id="t")
    page = api.get(f"{TASKS}/{task.pk}/results?limit=2&skip=2").json()
    assert (page["total"], page["page"], page["size"], page["pages"]) == (5, 2, 2, 3)
    assert [item["data"]["n"] for item in page["items"]] == [2, 3]
    assert {item["data_type"] for item in page["items"]} == {"item"}


def test_results_skip_limit_and_data_type(api, make_task):
    task = make_task()
    add_rows(task, [{"n": n} for n in range(5)])
    add_rows(task, [{"n": 100}], data_type="user")
    page = api.get(f"{TASKS}/{task.pk}/results?skip=4&limit=3").json()
    assert [i["data"]["n"] for i in page["items"]] == [4, 100]
    assert (page["total"], page["page"], page["size"], page["pages"]) == (6, 2, 3, 2)
    page = api.get(f"{TASKS}/{task.pk}/results?data_type=user").json()
    assert [i["data"]["n"] for i in page["items"]] == [100]
    assert page["total"] == 1
    page = api.get(f"{TASKS}/{task.pk}/results?skip=50").json()
    assert (page["items"], page["total"], page["page"]) == ([], 6, 1)
    page = api.get(f"{TASKS}/{task.pk}/results?data_type=").json()
    assert page["total"] == 6


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("limit=1001", "limit"),
        ("limit=0", "limit"),
        ("limit=ten", "limit"),
        ("skip=-1", "skip"),
        ("skip=x", "skip"),
        ("data_type=a%00b", "data_type"),
    ],
)
def test_results_bad_parameters_are_400(api, make_task, query, name):
    task = make_task()
    assert loc(api.get(f"{TASKS}/{task.pk}/results?{query}")) == [name]
    assert loc(api.get(f"{SEARCH}?query=n:1&{query}")) == [name]


def test_results_limit_1000_is_allowed(api, make_task):
    task = make_task()
    assert api.get(f"{TASKS}/{task.pk}/results?limit=1000").json()["size"] == 1000


def test_results_of_another_users_task_is_404(api, other_api, staff_api, make_task):
    task = make_task()
    add_rows(task, TWEETS)
    response = other_api.get(f"{TASKS}/{task.pk}/results")
    assert response.status_code == 404
    assert response.json() == {"detail": "Task not found"}
    assert other_api.get(f"{TASKS}/{task.pk}").json() == {"detail": "Task not found"}
    assert api.get(f"{TASKS}/999999/results").status_code == 404
    assert staff_api.get(f"{TASKS}/{task.pk}/results").json()["total"] == 3


def test_results_query_count_does_not_grow_with_rows(api, make_task):
    task = make_task()
    add_rows(task, TWEETS * 20)
    with CaptureQueriesContext(connection) as queries:
        assert len(api.get(f"{TASKS}/{task.pk}/results").json()["items"]) == 60
    few = len(view_queries(queries))
    add_rows(task, TWEETS * 20)
    with CaptureQueriesContext(connection) as queries:
        assert len(api.get(f"{TASKS}/{task.pk}/results").json()["items"]) == 100
    assert len(view_queries(queries)) == few <= 6


def test_deleting_a_task_deletes_its_results(api, make_task):
    task = make_task()
    add_rows(task, TWEETS)
    response = api.delete(f"{TASKS}/{task.pk}")
    assert response.json() == {"message": "Task and related results deleted successfully"}
    assert not ScrapeResult.objects.exists()


# --- GET /tasks/search/results ----------------------------------------------------------------


def search_ns(client, query: str, **params) -> list:
    response = client.get(SEARCH, {"query": query, **params})
    assert response.status_code == 200, response.content
    return [item["data"].get("n") for item in response.json()["items"]]


def test_search_terms_are_anded_nested_and_case_insensitive(api, make_task):
    task = make_task()
    add_rows(task, TWEETS)
    assert search_ns(api, "user.username:elonmusk") == [1, 10]
    assert search_ns(api, "user.username:elonmusk,text:tesla") == [10]
    assert search_ns(api, "text:TESLA") == [10, 2]
    assert search_ns(api, " text : tesla , user.username : SOME ") == [2]
    assert search_ns(api, "user.name:elon musk") == [1]
    assert search_ns(api, "missing:x") == []
    assert search_ns(api, "verified:true") == [2]
    assert search_ns(api, "n:10") == [10]
    assert search_ns(api, "text:100%") == []  # LIKE wildcards are literal
    assert search_ns(api, "text:tesla", data_type="user") == []


def test_search_envelope_and_paging(api, make_task):
    task = make_task()
    add_rows(task, [{"text": f"hit {n}", "n": n} for n in range(7)])
    page = api.get(SEARCH, {"query": "text:hit", "skip": 5, "limit": 5}).json()
    assert (page["total"], page["page"], page["size"], page["pages"]) == (7, 2, 5, 2)
    assert [item["data"]["n"] for item in page["items"]] == [5, 6]
    assert set(page["items"][0]) == {
        "id",
        "task_id",
        "data_type",
        "data",
        "metadata",
        "created_at",
    }


def test_search_is_scoped_to_the_users_tasks(api, other_api, staff_api, make_task, other_user):
    mine = make_task()
    theirs = make_task(owner=other_user)
    add_rows(mine, [{"text": "secret a", "n": 1}])
    add_rows(theirs, [{"text": "secret b", "n": 2}])
    assert search_ns(api, "text:secret") == [1]
    assert search_ns(other_api, "text:secret") == [2]
    assert search_ns(staff_api, "text:secret") == [1, 2]


@pytest.mark.parametrize(
    "query",
    [
        "",
        "elonmusk",
        ":value",
        "user.username:",
        "a:1,,b:2",
        "user..name:x",
        ".user:x",
        "user name:x",
        "x') OR 1=1 --:1",
        "a-b:1",
        ",".join(f"k{n}:v" for n in range(11)),
        "k:" + "v" * 201,
        "k:a\x00b",
    ],
)
def test_malformed_queries_are_400_naming_query(api, make_task, query):
    add_rows(make_task(), TWEETS)
    assert loc(api.get(SEARCH, {"query": query})) == ["query"]


def test_missing_query_is_400(api):
    assert loc(api.get(SEARCH)) == ["query"]


def test_injection_values_match_literally_and_never_leak(api, make_task, other_user):
    mine = make_task()
    theirs = make_task(owner=other_user)
    add_rows(mine, [{"text": "x') OR 1=1 --", "n": 1}, {"text": "plain", "n": 2}])
    add_rows(theirs, [{"text": "x') OR 1=1 --", "n": 3}])
    assert search_ns(api, "text:x') OR 1=1 --") == [1]
    assert search_ns(api, "text:' OR '1'='1") == []
    assert search_ns(api, 'text:"; DROP TABLE scraping_scraperesult; --') == []
    assert search_ns(api, "text:_") == []
    add_rows(mine, [{"a__b": "hit", "n": 4}, {"a": {"b": "hit"}, "n": 5}])
    assert search_ns(api, "a__b:hit") == [4]  # double underscores are part of the key
    assert search_ns(api, "a.b:hit") == [5]
    assert ScrapeResult.objects.count() == 5


# --- POST /tasks/export/{id} ------------------------------------------------------------------


def test_export_json_streams_all_rows_and_total(api, make_task):
    task = make_task()
    rows = add_rows(task, TWEETS * 150)  # 450 rows: several chunks
    response = api.post(f"{TASKS}/export/{task.pk}?format=json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    document = json.loads(body(response))
    assert document["total"] == 450
    assert [item["id"] for item in document["data"]] == [r.pk for r in rows]
    assert set(document["data"][0]) == {"id", "data", "created_at"}
    assert document["data"][0]["data"] == TWEETS[0]
    listed = api.get(f"{TASKS}/{task.pk}/results?limit=1").json()["items"][0]
    assert document["data"][0]["created_at"] == listed["created_at"]


def test_export_defaults_to_json_and_get_works(api, make_task):
    task = make_task()
    add_rows(task, TWEETS)
    assert json.loads(body(api.post(f"{TASKS}/export/{task.pk}")))["total"] == 3
    assert json.loads(body(api.get(f"{TASKS}/export/{task.pk}?format=json")))["total"] == 3


def test_export_of_a_task_without_rows(api, make_task):
    task = make_task()
    assert json.loads(body(api.post(f"{TASKS}/export/{task.pk}"))) == {"data": [], "total": 0}
    assert body(api.post(f"{TASKS}/export/{task.pk}?format=csv")) == "id,created_at\r\n"


def test_export_csv_header_disposition_and_flattened_columns(api, make_task):
    task = make_task()
    rows = add_rows(task, TWEETS)
    response = api.post(f"{TASKS}/export/{task.pk}?format=csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    assert response["Content-Disposition"] == f"attachment; filename=task_{task.pk}_results.csv"
    text = body(response)
    assert text.split("\r\n")[0] == (
        "id,data.n,data.text,data.user.name,data.user.username,data.verified,created_at"
    )
    table = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["id"]) for r in table] == [r.pk for r in rows]
    assert table[0]["data.user.name"] == "Elon Musk"
    assert table[1]["data.user.name"] == ""
    assert table[2]["data.verified"] == "true"
    assert table[1]["data.n"] == "10"


def test_export_csv_columns_come_from_the_first_1000_rows(api, make_task):
    task = make_task()
    add_rows(task, [{"a": n} for n in range(1000)] + [{"a": 1, "late": "x"}])
    text = body(api.post(f"{TASKS}/export/{task.pk}?format=csv"))
    lines = text.split("\r\n")
    assert lines[0] == "id,data.a,created_at"
    assert len(lines) == 1 + 1001 + 1  # header, rows, trailing empty string
    assert "late" not in text


def test_export_csv_escapes_formula_cells(api, make_task):
    task = make_task()
    cells = ["=cmd|' /C calc'!A0", "+1", "-1", "@x", "\tx", "\rx", "safe", "a=b"]
    add_rows(task, [{"v": cell} for cell in cells] + [{"v": -5}])
    text = body(api.post(f"{TASKS}/export/{task.pk}?format=csv"))
    values = [row["data.v"] for row in csv.DictReader(io.StringIO(text))]
    assert values == [
        "'=cmd|' /C calc'!A0",
        "'+1",
        "'-1",
        "'@x",
        "'\tx",
        "'\rx",
        "safe",
        "a=b",
        "'-5",
    ]


@pytest.mark.parametrize("fmt", ["xml", "CSV", "api"])
def test_export_bad_format_is_400(api, make_task, fmt):
    task = make_task()
    assert loc(api.post(f"{TASKS}/export/{task.pk}?format={fmt}")) == ["format"]


def test_export_of_another_users_task_is_404(api, other_api, make_task):
    task = make_task()
    add_rows(task, TWEETS)
    for fmt in ("json", "csv"):
        response = other_api.post(f"{TASKS}/export/{task.pk}?format={fmt}")
        assert response.status_code == 404
        assert response.json() == {"detail": "Task not found"}


def test_export_routes_do_not_shadow_task_routes(api, make_task):
    task = make_task()
    assert api.get(f"{TASKS}/{task.pk}").json()["id"] == task.pk
    assert api.get(f"{TASKS}/statistics").status_code == 200
    assert api.get(f"{TASKS}/search").status_code == 404
    assert api.get(f"{TASKS}/export/abc").status_code == 404


def test_schema_documents_the_result_routes(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = schema["paths"]
    results = paths["/api/v1/tasks/{id}/results"]["get"]
    limit = next(p for p in results["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 1000
    assert "key:value" in paths["/api/v1/tasks/search/results"]["get"]["description"]
    export = paths["/api/v1/tasks/export/{id}"]["post"]["responses"]["200"]["content"]
    assert {"application/json", "text/csv"} <= set(export)


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_export_reads_keyset_pages_without_gaps_or_repeats(api, make_task, monkeypatch, fmt):
    from scraping import export

    monkeypatch.setattr(export, "EXPORT_CHUNK", 7)  # pages of 7 rows instead of thousands
    task, other = make_task(), make_task()
    mine = []
    for n in range(5):  # the other task's rows interleave with ours: ids are not contiguous
        mine += add_rows(task, [{"n": n * 10 + k, "text": "é ✓"} for k in range(6)])[-6:]
        add_rows(other, [{"n": -1}])
    text = body(api.post(f"{TASKS}/export/{task.pk}?format={fmt}"))
    if fmt == "json":
        items = json.loads(text)["data"]
        assert [item["id"] for item in items] == [r.pk for r in mine]
        assert {item["data"]["text"] for item in items} == {"é ✓"}
    else:
        table = list(csv.DictReader(io.StringIO(text)))
        assert [int(row["id"]) for row in table] == [r.pk for r in mine]
        assert {row["data.text"] for row in table} == {"é ✓"}


def test_export_timestamps_follow_time_zone_like_the_results_list(api, make_task, settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    task = make_task()
    add_rows(task, TWEETS[:1])
    listed = api.get(f"{TASKS}/{task.pk}/results").json()["items"][0]["created_at"]
    assert listed.endswith("+08:00")
    document = json.loads(body(api.post(f"{TASKS}/export/{task.pk}?format=json")))
    table = list(
        csv.DictReader(io.StringIO(body(api.post(f"{TASKS}/export/{task.pk}?format=csv"))))
    )
    assert document["data"][0]["created_at"] == table[0]["created_at"] == listed


def test_export_csv_keeps_values_a_fast_parser_refuses(api, make_task):
    task = make_task()
    add_rows(task, [{"big": 10**30, "text": "ok"}])
    table = list(
        csv.DictReader(io.StringIO(body(api.post(f"{TASKS}/export/{task.pk}?format=csv"))))
    )
    assert (table[0]["data.big"], table[0]["data.text"]) == (str(10**30), "ok")


@pytest.mark.slow
def test_export_under_asgi_streams_every_row_a_page_at_a_time(
    transactional_db, user, make_task, tmp_path
):
    """run_service serves ASGI, where Django reads a blocking stream whole before sending it;
    the export takes its pages one by one on the request's thread and sends them all."""
    task = make_task("demo.noop")
    add_rows(task, [{"n": n} for n in range(2500)])  # more than one database page (2000)
    _, key = ApiToken.objects.issue(user)
    with asgi_server(tmp_path) as server:
        response = requests.post(
            f"{server}{TASKS}/export/{task.pk}?format=csv",
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.text)))
    assert len(rows) == 2501  # the header and every row
    assert [row[0] for row in rows[1:]] == [
        str(pk)
        for pk in ScrapeResult.objects.filter(task=task).order_by("id").values_list("id", flat=True)
    ]
