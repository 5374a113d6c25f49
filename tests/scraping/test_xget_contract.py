"""The XGet scraper API's requests, replayed as its documentation writes them, against its
status table: a body that fails validation is a 422 in FastAPI's shape, a malformed query
parameter a 400, any id that names no visible task a 404 ``{"detail": "Task not found"}``, and
the create body's ``user_id`` is honoured for staff and refused for anyone else.

Each refusal is checked to have changed nothing: tasks, their events, idempotency keys, quota
balances and the ledger are compared before and after.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from quota import ledger as quota
from quota.models import LedgerKind, QuotaBalance, QuotaLedgerEntry
from taskcenter.models import IdempotencyKey, Status, Task, TaskEvent
from tests.support.clients import token_client

pytestmark = pytest.mark.django_db

API = "/api/v1"

# 1.1's request body, verbatim.
CREATE = {
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
# A priced kind, to see who pays for a task made on someone's behalf.
SONG = {"task_type": "suno.song", "parameters": {"prompt": "a song about scraping"}}
SONG_PRICE = 10

NOT_STAFF = "Value error, Only staff may create tasks for another user."


def call(client, method: str, path: str, body: Any = None, **headers: str):
    """``body`` sent as the JSON text a client writes, with its Content-Type."""
    if body is None:
        return client.generic(method, API + path, **headers)
    text = body if isinstance(body, str | bytes) else json.dumps(body, ensure_ascii=False)
    return client.generic(method, API + path, text, content_type="application/json", **headers)


def state() -> tuple:
    """Everything a refused request must leave as it was."""
    return (
        list(
            Task.objects.order_by("pk").values_list(
                "pk", "owner_id", "status", "name", "parameters", "updated_at", "quota"
            )
        ),
        list(TaskEvent.objects.order_by("pk").values_list("pk", "task_id", "verb")),
        list(IdempotencyKey.objects.order_by("pk").values_list("pk", "owner_id", "task_id")),
        list(QuotaBalance.objects.order_by("user_id").values_list("user_id", "balance")),
        list(QuotaLedgerEntry.objects.order_by("pk").values_list("pk", "user_id", "amount")),
    )


@pytest.fixture
def xget_user(db):
    """The XGet scraper API's example user, ``user-789``."""
    return get_user_model().objects.create_user("user-789", password=None)


@pytest.fixture
def xget_api(xget_user):
    return token_client(xget_user)


# --- user_id -------------------------------------------------------------------------------------


def test_create_example_from_its_own_user_is_201_and_theirs(xget_api, xget_user):
    response = call(xget_api, "POST", "/tasks", CREATE)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["user_id"] == str(xget_user.pk)
    assert (body["task_name"], body["status"]) == ("采集用户推文", "PENDING")
    assert Task.objects.get().owner == xget_user


@pytest.mark.parametrize("name", ["user-789", "id"])
def test_staff_create_example_makes_the_task_for_the_user_it_names(
    staff_api, staff_user, xget_user, name
):
    body = {**CREATE, "user_id": str(xget_user.pk) if name == "id" else name}

    response = call(staff_api, "POST", "/tasks", body)

    assert response.status_code == 201, response.content
    assert response.json()["user_id"] == str(xget_user.pk)
    task = Task.objects.get()
    assert task.owner == xget_user
    created = TaskEvent.objects.get(task=task)
    assert created.actor_user == staff_user  # the operator did it, on the user's behalf


def test_staff_create_on_behalf_charges_the_owners_quota(staff_api, staff_user, xget_user):
    quota.grant(xget_user.pk, 25)
    quota.grant(staff_user.pk, 100)

    response = call(staff_api, "POST", "/tasks", {**SONG, "user_id": "user-789"})

    assert response.status_code == 201, response.content
    task = Task.objects.get()
    assert (task.owner, task.quota) == (xget_user, SONG_PRICE)
    assert quota.balance_of(xget_user.pk) == 25 - SONG_PRICE
    assert quota.balance_of(staff_user.pk) == 100
    charge = QuotaLedgerEntry.objects.get(kind=LedgerKind.CHARGE)
    assert (charge.user_id, charge.task_id, charge.amount) == (xget_user.pk, task.pk, -SONG_PRICE)

    # Cancelled, the refund goes back to the owner who paid.
    assert call(staff_api, "POST", f"/tasks/{task.pk}/cancel").status_code == 200
    assert quota.balance_of(xget_user.pk) == 25
    assert QuotaLedgerEntry.objects.get(kind=LedgerKind.REFUND).user_id == xget_user.pk


def test_staff_create_on_behalf_of_a_user_without_quota_is_402_and_changes_nothing(
    staff_api, staff_user, xget_user
):
    quota.grant(staff_user.pk, 100)  # the operator could pay, but it is not their task
    before = state()

    response = call(staff_api, "POST", "/tasks", {**SONG, "user_id": "user-789"})

    assert response.status_code == 402
    assert response.json()["needed"] == SONG_PRICE
    assert response.json()["balance"] == 0
    assert state()[:2] == before[:2]
    assert quota.balance_of(staff_user.pk) == 100
    assert not QuotaLedgerEntry.objects.filter(kind=LedgerKind.CHARGE).exists()


@pytest.mark.parametrize("user_id", ["user-789", "no-such-user", "user-789's id"])
def test_non_staff_naming_another_user_is_422_on_user_id_whether_or_not_it_exists(
    other_api, xget_user, user_id
):
    user_id = user_id.replace("user-789's id", str(xget_user.pk))
    before = state()

    response = call(other_api, "POST", "/tasks", {**CREATE, "user_id": user_id})

    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {"type": "value_error", "loc": ["body", "user_id"], "msg": NOT_STAFF, "input": user_id}
        ]
    }
    assert state() == before


@pytest.mark.parametrize("user_id", ["user-000", "999999", "retired"])
def test_staff_naming_no_active_user_is_422_on_user_id(staff_api, user_id):
    get_user_model().objects.create_user("retired", password=None, is_active=False)
    before = state()

    response = call(staff_api, "POST", "/tasks", {**CREATE, "user_id": user_id})

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["type"], error["loc"], error["input"]) == (
        "value_error",
        ["body", "user_id"],
        user_id,
    )
    assert error["msg"] == f"Value error, No active user has the id or username {user_id!r}."
    assert state() == before


def test_user_id_that_is_not_a_string_is_422_string_type(staff_api, xget_user):
    before = state()

    response = call(staff_api, "POST", "/tasks", {**CREATE, "user_id": xget_user.pk})

    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "type": "string_type",
            "loc": ["body", "user_id"],
            "msg": "Input should be a valid string",
            "input": xget_user.pk,
        }
    ]
    assert state() == before


def test_batch_example_from_its_own_user_and_from_staff_makes_that_users_tasks(
    xget_api, staff_api, xget_user
):
    mine = call(xget_api, "POST", "/tasks/batch", BATCH)
    theirs = call(staff_api, "POST", "/tasks/batch", BATCH)

    for response in (mine, theirs):
        assert response.status_code == 200, response.content
        assert [row["task_name"] for row in response.json()] == ["任务1", "任务2"]
        assert {row["user_id"] for row in response.json()} == {str(xget_user.pk)}
    assert set(Task.objects.values_list("owner_id", flat=True)) == {xget_user.pk}
    assert Task.objects.count() == 4


def test_batch_example_from_another_user_is_422_naming_each_items_user_id(other_api, xget_user):
    before = state()

    response = call(other_api, "POST", "/tasks/batch", BATCH)

    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "type": "value_error",
                "loc": ["body", 0, "user_id"],
                "msg": NOT_STAFF,
                "input": "user-789",
            },
            {
                "type": "value_error",
                "loc": ["body", 1, "user_id"],
                "msg": NOT_STAFF,
                "input": "user-789",
            },
        ]
    }
    assert state() == before


def test_idempotent_create_on_behalf_replays_the_owners_task(staff_api, staff_user, xget_user):
    key = {"HTTP_IDEMPOTENCY_KEY": "xget-create-1"}

    first = call(staff_api, "POST", "/tasks", CREATE, **key)
    again = call(staff_api, "POST", "/tasks", CREATE, **key)

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert Task.objects.get().owner == xget_user
    assert IdempotencyKey.objects.get().owner == staff_user  # the key is the sender's


# --- 404 for any id ------------------------------------------------------------------------------

# Every task-scoped call of the XGet scraper API, with the body or query its examples send.
TASK_CALLS = [
    ("GET", "/tasks/{id}", None),
    ("PUT", "/tasks/{id}", UPDATE),
    ("DELETE", "/tasks/{id}", None),
    ("POST", "/tasks/{id}/start", None),
    ("POST", "/tasks/{id}/stop", None),
    ("GET", "/tasks/{id}/results?skip=0&limit=100&data_type=tweet", None),
    ("POST", "/tasks/export/{id}?format=json", None),
    ("POST", "/tasks/export/{id}?format=csv", None),
    ("GET", "/task-executions/task/{id}", None),
]
IDS = ["task-abc123", "999999", "9" * 25, "0", "-1", "1e3", "a.b", "%E4%B8%AD", "bob's"]


@pytest.mark.parametrize(("method", "path", "body"), TASK_CALLS)
def test_an_id_naming_no_task_is_404_task_not_found_on_every_task_path(
    xget_api, other_user, make_task, method, path, body
):
    others = make_task("USER_INFO", {"username": "jack"}, owner=other_user)
    before = state()

    for task_id in [*IDS, str(others.pk)]:
        url = path.format(id=task_id.replace("bob's", str(others.pk)))
        response = call(xget_api, method, url, body)

        assert response.status_code == 404, (url, response.content)
        assert response.json() == {"detail": "Task not found"}, url
    assert state() == before


def test_an_id_naming_no_execution_is_404_execution_not_found(xget_api):
    for execution_id in ["exec-123", "999999", "9" * 25]:
        response = call(xget_api, "GET", f"/task-executions/{execution_id}")

        assert response.status_code == 404
        assert response.json() == {"detail": "Execution not found"}


def test_unknown_ids_keep_the_methods_of_their_path(xget_api):
    assert call(xget_api, "GET", "/tasks/task-abc123/start").status_code == 405
    assert call(xget_api, "DELETE", "/tasks/task-abc123/start").status_code == 405


def test_an_action_whose_id_went_missing_is_an_unknown_task_not_a_405(xget_api):
    """``tasks/{id}/start`` built from an empty id is ``tasks/start``: a 404, as any unknown
    URL was before the catch-all routes, not a method error on a task's path."""
    response = call(xget_api, "POST", "/tasks/start")
    assert response.status_code == 404
    assert response.json() == {"detail": "Task not found"}


def test_unknown_ids_still_need_authentication(client):
    response = client.get(f"{API}/tasks/task-abc123")

    assert response.status_code == 401


# --- 422 for bodies ------------------------------------------------------------------------------


def with_parameters(**changes: Any) -> dict:
    return {**CREATE, "user_id": "user-789", "parameters": {**CREATE["parameters"], **changes}}


# The create example with one fault each, and pydantic v2's item for it.
BAD_CREATES = {
    "no task_type": (
        {key: value for key, value in CREATE.items() if key != "task_type"},
        {"type": "missing", "loc": ["body", "task_type"], "msg": "Field required"},
    ),
    "task_name a number": (
        {**CREATE, "task_name": 5},
        {
            "type": "string_type",
            "loc": ["body", "task_name"],
            "msg": "Input should be a valid string",
        },
    ),
    "task_name too long": (
        {**CREATE, "task_name": "名" * 201},
        {
            "type": "string_too_long",
            "loc": ["body", "task_name"],
            "msg": "String should have at most 200 characters",
            "ctx": {"max_length": 200},
        },
    ),
    "limit not a number": (
        with_parameters(limit="fifty"),
        {
            "type": "int_parsing",
            "loc": ["body", "parameters", "limit"],
            "msg": "Input should be a valid integer, unable to parse string as an integer",
        },
    ),
    "limit zero": (
        with_parameters(limit=0),
        {
            "type": "greater_than_equal",
            "loc": ["body", "parameters", "limit"],
            "msg": "Input should be greater than or equal to 1",
            "ctx": {"ge": 1},
        },
    ),
    "limit too large": (
        with_parameters(limit=10_001),
        {
            "type": "less_than_equal",
            "loc": ["body", "parameters", "limit"],
            "msg": "Input should be less than or equal to 10000",
            "ctx": {"le": 10_000},
        },
    ),
    "username not a handle": (
        with_parameters(username="elon musk"),
        {
            "type": "string_pattern_mismatch",
            "loc": ["body", "parameters", "username"],
            "msg": "String should match pattern '^[A-Za-z0-9_]{1,15}$'",
            "ctx": {"pattern": "^[A-Za-z0-9_]{1,15}$"},
        },
    ),
    "include_replies not a boolean": (
        with_parameters(include_replies="sometimes"),
        {
            "type": "bool_parsing",
            "loc": ["body", "parameters", "include_replies"],
            "msg": "Input should be a valid boolean, unable to interpret input",
        },
    ),
    "parameters a list": (
        {**CREATE, "parameters": ["elonmusk"]},
        {
            "type": "dict_type",
            "loc": ["body", "parameters"],
            "msg": "Input should be a valid dictionary",
        },
    ),
    "body a list": (
        [CREATE],
        {
            "type": "model_attributes_type",
            "loc": ["body"],
            "msg": "Input should be a valid dictionary or object to extract fields from",
        },
    ),
}


@pytest.mark.parametrize(("body", "expected"), BAD_CREATES.values(), ids=BAD_CREATES.keys())
def test_create_example_with_a_fault_is_422_in_fastapis_shape(xget_api, body, expected):
    before = state()

    response = call(xget_api, "POST", "/tasks", body)

    assert response.status_code == 422, response.content
    [error] = response.json()["detail"]
    assert {key: error[key] for key in expected} == expected
    assert set(error) <= {"type", "loc", "msg", "input", "ctx"}
    assert "input" in error
    assert state() == before


def test_missing_field_input_is_the_object_it_is_missing_from(xget_api):
    body = {key: value for key, value in CREATE.items() if key != "task_type"}

    [error] = call(xget_api, "POST", "/tasks", body).json()["detail"]

    assert error["input"] == body


def test_unknown_task_type_is_422_enum_listing_the_types(xget_api):
    before = state()

    response = call(xget_api, "POST", "/tasks", {**CREATE, "task_type": "USER_LIKES"})

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["type"], error["loc"], error["input"]) == (
        "enum",
        ["body", "task_type"],
        "USER_LIKES",
    )
    assert error["msg"] == f"Input should be {error['ctx']['expected']}"
    for task_type in ("USER_TWEETS", "USER_INFO", "KEYWORD_SEARCH", "HASHTAG_SEARCH"):
        assert f"'{task_type}'" in error["ctx"]["expected"]
    assert state() == before


def test_json_syntax_error_is_422_json_invalid(xget_api):
    text = json.dumps(CREATE, ensure_ascii=False)[:-1]  # the closing brace lost
    before = state()

    response = call(xget_api, "POST", "/tasks", text)

    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "type": "json_invalid",
                "loc": ["body", len(text)],
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": "Expecting ',' delimiter"},
            }
        ]
    }
    assert state() == before


@pytest.mark.parametrize(
    ("body", "kind", "loc"),
    [
        (BATCH[0], "list_type", ["body"]),
        ([], "too_short", ["body"]),
        ([BATCH[0], {**BATCH[1], "task_type": "USER_LIKES"}], "enum", ["body", 1, "task_type"]),
        (
            [BATCH[0], {**BATCH[1], "parameters": {"username": ""}}],
            "string_too_short",
            ["body", 1, "parameters", "username"],
        ),
    ],
)
def test_batch_example_with_a_fault_is_422_and_creates_nothing(xget_api, body, kind, loc):
    before = state()

    response = call(xget_api, "POST", "/tasks/batch", body)

    assert response.status_code == 422, response.content
    [error] = response.json()["detail"]
    assert (error["type"], error["loc"]) == (kind, loc)
    assert state() == before


def test_update_example_is_200_and_with_a_fault_422_changing_nothing(
    xget_api, xget_user, make_task
):
    task = make_task("USER_TWEETS", {"username": "elonmusk"}, owner=xget_user)

    ok = call(xget_api, "PUT", f"/tasks/{task.pk}", UPDATE)
    assert ok.status_code == 200, ok.content
    assert (ok.json()["task_name"], ok.json()["parameters"]["limit"]) == ("更新后的任务名称", 100)
    before = state()

    bad = call(xget_api, "PUT", f"/tasks/{task.pk}", {**UPDATE, "parameters": {"limit": 100}})

    assert bad.status_code == 422
    assert bad.json()["detail"] == [
        {
            "type": "missing",
            "loc": ["body", "parameters", "username"],
            "msg": "Field required",
            "input": {"limit": 100},
        }
    ]
    assert state() == before
    assert Task.objects.get(pk=task.pk).status == Status.PENDING


# --- 400 for query parameters --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "name"),
    [
        ("GET", "/tasks?page=one&size=10&status=PENDING&user_id=user-789", "page"),
        ("GET", "/tasks?page=1&size=1000", "size"),
        ("GET", "/tasks?status=WAITING", "status"),
        ("GET", "/tasks/{id}/results?skip=-1&limit=100", "skip"),
        ("GET", "/tasks/{id}/results?skip=0&limit=1001", "limit"),
        ("GET", "/tasks/search/results?query=elonmusk&limit=50", "query"),
        ("POST", "/tasks/export/{id}?format=xml", "format"),
        ("GET", "/task-executions?page=0&size=20", "page"),
    ],
)
def test_a_malformed_query_parameter_stays_400_naming_it(
    xget_api, xget_user, make_task, method, path, name
):
    task = make_task("USER_INFO", {"username": "jack"}, owner=xget_user)
    before = state()

    response = call(xget_api, method, path.format(id=task.pk))

    assert response.status_code == 400, response.content
    [error] = response.json()["detail"]
    assert error["loc"] == [name]
    assert state() == before


def test_a_malformed_start_flag_on_a_good_create_stays_400(xget_api):
    before = state()

    response = call(xget_api, "POST", "/tasks?start=maybe", CREATE)

    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["start"]
    assert state() == before


def test_the_schema_documents_fastapis_422_on_the_bodies(xget_api):
    schema = xget_api.get("/api/schema/", {"format": "json"}).json()
    paths = schema["paths"]

    for path, method in [
        ("/api/v1/tasks", "post"),
        ("/api/v1/tasks/batch", "post"),
        ("/api/v1/tasks/{id}", "put"),
        ("/api/v1/tasks/{id}", "patch"),
        ("/api/v1/tasks/{id}/cancel", "post"),
        ("/api/v1/tasks/{id}/clone", "post"),
    ]:
        assert "422" in paths[path][method]["responses"], (path, method)
    item = schema["components"]["schemas"]["ValidationErrorItem"]
    assert {"loc", "msg", "type", "input", "ctx"} <= set(item["properties"])
    assert set(item["required"]) == {"loc", "msg", "type"}
    create = schema["components"]["schemas"]["TaskCreateInputRequest"]
    assert "user_id" in create["properties"]
