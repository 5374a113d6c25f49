"""Every example request of the XGet scraper API, pasted against a running server.

A live server, a real worker process and the sandbox platform; requests go over HTTP with a
Bearer token, and each answer is checked against the shape the XGet scraper API documents. The
comments number the examples as its reference does (1.x tasks, 2.x executions).
"""

from __future__ import annotations

import csv
import io
from datetime import datetime

import pytest
import requests
from django.contrib.auth import get_user_model

from sandbox.platform import SandboxPlatform
from scraping.models import ScrapeResult
from taskcenter.models import Task
from taskcenter.models.tokens import ApiToken
from tests.support.processes import wait_for

pytestmark = pytest.mark.slow

# Field lists of the XGet scraper API's models ("数据模型").
TASK_FIELDS = {
    "id",
    "task_name",
    "describe",
    "task_type",
    "parameters",
    "account_id",
    "proxy_id",
    "user_id",
    "status",
    "error_message",
    "created_at",
    "updated_at",
}
EXECUTION_FIELDS = {
    "id",
    "task_id",
    "account_id",
    "proxy_id",
    "status",
    "error_message",
    "started_at",
    "completed_at",
    "duration",
    "result_count",
}
PAGE_FIELDS = {"items", "total", "page", "size", "pages"}
RESULT_FIELDS = {"id", "task_id", "data_type", "data", "metadata", "created_at"}

# 1.1's request body, verbatim.
CREATE_USER_TWEETS = {
    "task_name": "采集用户推文",
    "describe": "采集指定用户的最新推文",
    "task_type": "USER_TWEETS",
    "parameters": {
        "username": "elonmusk",
        "limit": 50,
        "include_replies": False,
        "include_retweets": False,
    },
    "account_id": "account-123",
    "proxy_id": "proxy-456",
    "user_id": "user-789",
}
# "任务类型和参数": the other five types with the parameters listed there.
OTHER_TYPES = {
    "USER_INFO": {"username": "elonmusk"},
    "KEYWORD_SEARCH": {"query": "tesla", "limit": 30, "lang": "en"},
    "HASHTAG_SEARCH": {"hashtag": "spacex", "limit": 30},
    "USER_FOLLOWERS": {"username": "elonmusk", "limit": 30},
    "USER_FOLLOWING": {"username": "elonmusk", "limit": 30},
}
# 1.4's request body, verbatim.
UPDATE = {
    "task_name": "更新后的任务名称",
    "describe": "更新后的任务描述",
    "parameters": {"username": "elonmusk", "limit": 100},
    "status": "PENDING",
}
# 1.9's request body, verbatim.
BATCH = [
    {
        "task_name": "任务1",
        "task_type": "USER_TWEETS",
        "parameters": {"username": "user1"},
        "user_id": "user-789",
    },
    {
        "task_name": "任务2",
        "task_type": "USER_INFO",
        "parameters": {"username": "user2"},
        "user_id": "user-789",
    },
]


def iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def assert_task_shape(task: dict) -> None:
    assert set(task) >= TASK_FIELDS
    assert isinstance(task["task_name"], str)
    assert isinstance(task["parameters"], dict)
    assert isinstance(task["user_id"], str)
    iso(task["created_at"])
    assert task["updated_at"] is None or iso(task["updated_at"])


def assert_execution_shape(execution: dict) -> None:
    assert set(execution) >= EXECUTION_FIELDS
    iso(execution["started_at"])
    assert execution["duration"] is None or isinstance(execution["duration"], float)


@pytest.fixture
def client_of(live_server):
    """A session for user ``user-789`` (the XGet scraper API's example user) with a real token."""
    user = get_user_model().objects.create_user("user-789", password=None)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {ApiToken.objects.issue(user)[1]}"
    base = f"{live_server.url}/api/v1"

    def call(method: str, path: str, **kwargs) -> requests.Response:
        return session.request(method, base + path, timeout=30, **kwargs)

    call.user = user
    return call


def test_every_xget_scraper_api_example_over_http(client_of, start_worker):
    call = client_of
    with SandboxPlatform() as platform:
        platform.control(suspend_account="account-suspended")
        start_worker(
            "--concurrency",
            "4",
            env={"SCRAPING_BASE_URL": platform.url, "SCRAPING_TOKEN": "sandbox-token"},
        )

        # 1.1 create, with the XGet example's body: 201 and the same fields back.
        created = call("POST", "/tasks", json=CREATE_USER_TWEETS)
        assert created.status_code == 201, created.text
        task = created.json()
        assert_task_shape(task)
        for field in ("task_name", "describe", "task_type", "parameters"):
            assert task[field] == CREATE_USER_TWEETS[field]
        assert (task["account_id"], task["proxy_id"]) == ("account-123", "proxy-456")
        assert (task["status"], task["error_message"]) == ("PENDING", None)
        assert task["user_id"] == str(call.user.pk)  # the token's user owns what it creates
        tweets_id = task["id"]

        # ...and each other type with the parameters the XGet scraper API lists for it.
        others = {}
        for task_type, parameters in OTHER_TYPES.items():
            response = call(
                "POST", "/tasks", json={"task_type": task_type, "parameters": parameters}
            )
            assert response.status_code == 201, response.text
            assert response.json()["task_type"] == task_type
            assert response.json()["parameters"].items() >= parameters.items()
            others[task_type] = response.json()["id"]

        # 1.2 list: the XGet example's query string, verbatim.
        listed = call("GET", "/tasks?page=1&size=10&status=PENDING&user_id=user-789")
        assert listed.status_code == 200, listed.text
        page = listed.json()
        assert set(page) == PAGE_FIELDS
        assert (page["total"], page["page"], page["size"], page["pages"]) == (6, 1, 10, 1)
        for item in page["items"]:
            assert_task_shape(item)
        by_type = call("GET", "/tasks?task_type=USER_TWEETS").json()
        assert [item["id"] for item in by_type["items"]] == [tweets_id]

        # 1.3 detail, and its 404.
        detail = call("GET", f"/tasks/{tweets_id}")
        assert detail.status_code == 200
        assert detail.json() == task | {"updated_at": detail.json()["updated_at"]}
        for unknown in ("999999", "task-abc123"):
            missing = call("GET", f"/tasks/{unknown}")
            assert missing.status_code == 404
            assert missing.json() == {"detail": "Task not found"}

        # 1.4 update with the XGet example's body (its "status": "PENDING" changes nothing).
        updated = call("PUT", f"/tasks/{tweets_id}", json=UPDATE)
        assert updated.status_code == 200, updated.text
        body = updated.json()
        assert_task_shape(body)
        assert (body["task_name"], body["describe"]) == (UPDATE["task_name"], UPDATE["describe"])
        assert body["parameters"]["limit"] == 100
        assert body["status"] == "PENDING"
        assert iso(body["updated_at"]) >= iso(body["created_at"])

        # Validation errors: the XGet scraper API's 422 {"detail": [{"loc", "msg", "type"}]}.
        bad = call("POST", "/tasks", json={"task_type": "USER_TWEETS", "parameters": {"limit": 5}})
        assert bad.status_code == 422
        [error] = bad.json()["detail"]
        assert error["loc"] == ["body", "parameters", "username"]
        assert (error["type"], error["msg"]) == ("missing", "Field required")

        # 1.6 start every task; the worker scrapes them from the sandbox.
        for task_id in [tweets_id, *others.values()]:
            started = call("POST", f"/tasks/{task_id}/start")
            assert started.status_code == 200, started.text
            assert {
                "id",
                "task_name",
                "status",
                "error_message",
                "created_at",
                "updated_at",
            } <= set(started.json())
            assert started.json()["status"] in {"QUEUED", "RUNNING", "COMPLETED"}

        def all_completed():
            rows = [call("GET", f"/tasks/{i}").json() for i in [tweets_id, *others.values()]]
            return rows if all(row["status"] == "COMPLETED" for row in rows) else None

        for row in wait_for(all_completed, timeout=60):
            assert row["error_message"] is None

        # 1.8 results: skip/limit/data_type, the XGet envelope and item shape.
        results = call("GET", f"/tasks/{tweets_id}/results?skip=0&limit=100&data_type=tweet")
        assert results.status_code == 200
        page = results.json()
        assert set(page) == PAGE_FIELDS
        assert (page["total"], page["page"], page["size"], page["pages"]) == (100, 1, 100, 1)
        item = page["items"][0]
        assert set(item) == RESULT_FIELDS
        assert (item["task_id"], item["data_type"]) == (tweets_id, "tweet")
        assert {"id", "text", "user", "created_at"} <= set(item["data"])
        assert item["data"]["user"]["username"] == "elonmusk"
        assert item["data"]["user"]["name"] == "Elon Musk"
        assert {"source", "scraped_at"} <= set(item["metadata"])
        profile = call("GET", f"/tasks/{others['USER_INFO']}/results").json()
        assert [i["data_type"] for i in profile["items"]] == ["user"]

        # 1.10 search: the XGet example's query string, verbatim.
        found = call("GET", "/tasks/search/results?query=username:elonmusk,text:tesla&limit=50")
        assert found.status_code == 200, found.text
        page = found.json()
        assert set(page) == PAGE_FIELDS
        assert (page["page"], page["size"]) == (1, 50)
        expected = sum(
            1
            for row in ScrapeResult.objects.filter(task__owner=call.user)
            if row.data.get("username") == "elonmusk"
            and "tesla" in row.data.get("text", "").lower()
        )
        assert page["total"] == expected > 0
        for item in page["items"]:
            assert item["data"]["user"]["username"] == "elonmusk"
            assert "tesla" in item["data"]["text"].lower()
        malformed = call("GET", "/tasks/search/results?query=elonmusk")
        assert malformed.status_code == 400
        assert malformed.json()["detail"][0]["loc"] == ["query"]

        # 1.11 export, JSON (the default) and CSV.
        exported = call("POST", f"/tasks/export/{tweets_id}?format=json")
        assert exported.status_code == 200
        document = exported.json()
        assert set(document) == {"data", "total"}
        assert document["total"] == len(document["data"]) == 100
        assert set(document["data"][0]) == {"id", "data", "created_at"}
        assert call("POST", f"/tasks/export/{tweets_id}").json() == document
        as_csv = call("POST", f"/tasks/export/{tweets_id}?format=csv")
        assert as_csv.status_code == 200
        assert as_csv.headers["Content-Type"] == "text/csv"
        assert (
            as_csv.headers["Content-Disposition"]
            == f"attachment; filename=task_{tweets_id}_results.csv"
        )
        table = list(csv.DictReader(io.StringIO(as_csv.text)))
        header = as_csv.text.splitlines()[0].split(",")
        assert header[0] == "id"
        assert header[-1] == "created_at"
        assert {"data.text", "data.user.username"} <= set(header)
        assert len(table) == 100
        assert table[0]["data.text"] == document["data"][0]["data"]["text"]

        # 1.9 batch create with the XGet example's body: 200 and a list in the same order.
        batch = call("POST", "/tasks/batch", json=BATCH)
        assert batch.status_code == 200, batch.text
        made = batch.json()
        assert [t["task_name"] for t in made] == ["任务1", "任务2"]
        assert [t["task_type"] for t in made] == ["USER_TWEETS", "USER_INFO"]
        for row in made:
            assert {
                "id",
                "task_name",
                "task_type",
                "parameters",
                "user_id",
                "status",
                "created_at",
            } <= set(row)
            assert row["status"] == "PENDING"

        # 2.3's failed execution: a suspended account ("Account suspended").
        suspended = call(
            "POST",
            "/tasks",
            json={
                "task_type": "USER_TWEETS",
                "parameters": {"username": "elonmusk"},
                "account_id": "account-suspended",
                "start": True,
            },
        ).json()
        wait_for(
            lambda: call("GET", f"/tasks/{suspended['id']}").json()["status"] == "FAILED",
            timeout=30,
        )

        # 2.1 executions list with the XGet example's filters.
        executions = call(
            "GET", f"/task-executions?page=1&size=20&task_id={tweets_id}&status=COMPLETED"
        )
        assert executions.status_code == 200
        page = executions.json()
        assert set(page) == PAGE_FIELDS
        [execution] = page["items"]
        assert_execution_shape(execution)
        assert (execution["task_id"], execution["status"]) == (tweets_id, "COMPLETED")
        assert (execution["account_id"], execution["proxy_id"]) == ("account-123", "proxy-456")
        assert execution["result_count"] == 100
        assert execution["completed_at"] is not None

        # 2.2 one execution.
        one = call("GET", f"/task-executions/{execution['id']}")
        assert one.status_code == 200
        assert_execution_shape(one.json())
        assert one.json()["id"] == execution["id"]

        # 2.3 a task's execution history, the failed one as in the XGet example.
        [failed] = call("GET", f"/task-executions/task/{suspended['id']}").json()
        assert_execution_shape(failed)
        assert (failed["status"], failed["error_message"]) == ("FAILED", "Account suspended")
        assert failed["result_count"] == 0

        # 1.7 stop: a running scrape stops (slow pages keep it running long enough).
        platform.control(slow_ms=300)
        slow = call(
            "POST",
            "/tasks",
            json={
                "task_type": "USER_FOLLOWERS",
                "parameters": {"username": "jack", "limit": 2000},
                "start": True,
            },
        ).json()
        wait_for(lambda: call("GET", f"/tasks/{slow['id']}").json()["status"] == "RUNNING")
        stopped = call("POST", f"/tasks/{slow['id']}/stop")
        assert stopped.status_code == 200, stopped.text
        assert stopped.json()["status"] == "STOPPED"
        assert {"id", "task_name", "status", "error_message", "created_at", "updated_at"} <= set(
            stopped.json()
        )

        # 1.5 delete: the XGet scraper API's message, and the results are gone.
        deleted = call("DELETE", f"/tasks/{tweets_id}")
        assert deleted.status_code == 200
        assert deleted.json() == {"message": "Task and related results deleted successfully"}
        assert not ScrapeResult.objects.filter(task_id=tweets_id).exists()
        assert not Task.objects.filter(pk=tweets_id).exists()
        assert call("GET", f"/tasks/{tweets_id}/results").json() == {"detail": "Task not found"}
