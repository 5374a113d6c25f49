"""Bad input never becomes a 500, errors keep one shape, idempotency keys, schema and docs."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from taskcenter.models import IdempotencyKey, Status, Task

pytestmark = pytest.mark.django_db

TASKS = "/api/v1/tasks"


def post_raw(client, body: bytes | str, url: str = TASKS, **extra):
    return client.generic("POST", url, body, content_type="application/json", **extra)


def assert_400(response, loc: list | None = None) -> None:
    assert response.status_code == 400, response.content
    detail = response.json()["detail"]
    if loc is not None:
        assert detail[0]["loc"] == loc, detail
    assert not Task.objects.exists()


def assert_422(response, loc: list | None = None, kind: str | None = None) -> None:
    """FastAPI's answer to a body that fails validation, and nothing created."""
    assert response.status_code == 422, response.content
    detail = response.json()["detail"]
    assert detail
    for item in detail:
        assert {"loc", "msg", "type"} <= set(item), item
        assert item["loc"][0] == "body", item
    if loc is not None:
        assert detail[0]["loc"] == loc, detail
    if kind is not None:
        assert detail[0]["type"] == kind, detail
    assert not Task.objects.exists()


# --- malformed bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "position", "reason"),
    [
        ('{"task_type": ', 14, "Expecting value"),
        ("not json", 0, "Expecting value"),
        ("[1, 2", 5, "Expecting ',' delimiter"),
    ],
)
def test_json_syntax_error_is_422_json_invalid_at_its_position(api, body, position, reason):
    response = post_raw(api, body)
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "type": "json_invalid",
                "loc": ["body", position],
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": reason},
            }
        ]
    }
    assert not Task.objects.exists()


@pytest.mark.parametrize("body", ['{"task_type": NaN}', "\xff\xfe", "[" * 100_000])
def test_body_that_cannot_be_read_as_json_is_400(api, body):
    response = post_raw(api, body.encode("latin-1") if body == "\xff\xfe" else body)
    assert response.status_code == 400
    assert isinstance(response.json()["detail"], str)


@pytest.mark.parametrize(
    ("body", "loc", "kind"),
    [
        ({"task_type": 5}, ["body", "task_type"], "enum"),  # pydantic's word for it, too
        ({"task_type": ["demo.noop"]}, ["body", "task_type"], "string_type"),
        ({"task_type": "demo.noop", "priority": "high"}, ["body", "priority"], "int_parsing"),
        ({"task_type": "demo.noop", "priority": 2**70}, ["body", "priority"], "less_than_equal"),
        (
            {"task_type": "demo.noop", "max_attempts": 0},
            ["body", "max_attempts"],
            "greater_than_equal",
        ),
        ({"task_type": "demo.noop", "parameters": [1]}, ["body", "parameters"], "dict_type"),
        ({"task_type": "demo.noop", "parameters": "x"}, ["body", "parameters"], "dict_type"),
        (
            {"task_type": "demo.noop", "parameters": {"n": 2**64}},
            ["body", "parameters"],
            "value_error",
        ),
        (
            {"task_type": "demo.noop", "parameters": {"n": -(2**63) - 1}},
            ["body", "parameters"],
            "value_error",
        ),
        (
            {"task_type": "demo.noop", "parameters": {"s": "a\x00b"}},
            ["body", "parameters"],
            "value_error",
        ),
        (
            {"task_type": "demo.noop", "parameters": {"a\x00": 1}},
            ["body", "parameters"],
            "value_error",
        ),
        ({"task_type": "demo.noop", "task_name": "a\x00b"}, ["body", "task_name"], "value_error"),
        ({"task_type": "demo\x00noop"}, ["body", "task_type"], "value_error"),
        (
            {"task_type": "demo.noop", "account_id": "x" * 65},
            ["body", "account_id"],
            "string_too_long",
        ),
        (
            {"task_type": "demo.noop", "run_after": "soon"},
            ["body", "run_after"],
            "datetime_parsing",
        ),
        ({"task_type": "demo.noop", "start": "perhaps"}, ["body", "start"], "bool_parsing"),
        (
            {"task_type": "demo.countdown", "parameters": {"seconds": 2**80}},
            ["body", "parameters"],
            "value_error",  # beyond 64 bits: refused before the kind reads it
        ),
    ],
)
def test_wrong_types_nul_bytes_and_huge_numbers_are_422(api, body, loc, kind):
    assert_422(api.post(TASKS, body, format="json"), loc, kind)


def test_lone_surrogates_and_deep_nesting_in_parameters_are_422(api):
    response = post_raw(api, '{"task_type": "demo.noop", "parameters": {"s": "\\ud800"}}')
    assert_422(response, ["body", "parameters"], "value_error")
    # The refused value is echoed as FastAPI does, with what JSON cannot carry replaced.
    assert response.json()["detail"][0]["input"] == {"s": "\ufffd"}
    deep = '{"task_type": "demo.noop", "parameters": ' + '{"a": ' * 40 + "1" + "}" * 41
    assert_422(post_raw(api, deep), ["body", "parameters"], "value_error")
    response = post_raw(api, '{"task_type": "demo.noop", "parameters": {"x": 1e999}}')
    assert_422(response, ["body", "parameters"], "value_error")
    assert response.json()["detail"][0]["input"] == {"x": None}


def test_huge_numbers_are_422_on_update_and_400_on_filters(api, make_task):
    task = make_task("demo.countdown", {"seconds": 5})
    response = api.patch(f"{TASKS}/{task.pk}", {"priority": 10**30}, format="json")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "priority"]
    assert api.get(f"{TASKS}?user_id={10**30}").status_code == 400


def test_start_query_flag_must_be_boolean(api):
    assert_400(api.post(f"{TASKS}?start=maybe", {"task_type": "demo.noop"}, format="json"))


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_oversized_body_is_json_413(api):
    body = json.dumps({"task_type": "demo.noop", "describe": "x" * 2000})
    response = post_raw(api, body)
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    assert not Task.objects.exists()


def test_unknown_api_url_and_method_are_json(api, make_task):
    response = api.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
    task = make_task()
    response = api.post(f"{TASKS}/{task.pk}")
    assert response.status_code == 405
    assert "detail" in response.json()


def test_unsupported_media_type_is_415(api):
    response = api.generic("POST", TASKS, "task_type=x", content_type="text/plain")
    assert response.status_code == 415
    assert "detail" in response.json()


# --- idempotency ----------------------------------------------------------------------------------


def test_idempotency_key_replays_the_same_task(api):
    body = {"task_type": "demo.noop", "task_name": "once"}
    first = api.post(TASKS, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 201
    again = api.post(TASKS, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert Task.objects.count() == 1
    assert IdempotencyKey.objects.get().task_id == first.json()["id"]


def test_idempotency_key_with_another_body_is_422(api):
    api.post(TASKS, {"task_type": "demo.noop"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    response = api.post(
        TASKS, {"task_type": "demo.noop", "start": True}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert response.status_code == 422
    assert "Idempotency-Key" in response.json()["detail"]
    task = Task.objects.get()
    assert task.status == Status.PENDING


def test_idempotency_keys_belong_to_their_owner(api, other_api):
    body = {"task_type": "demo.noop"}
    mine = api.post(TASKS, body, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    theirs = other_api.post(TASKS, body, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["id"] != theirs.json()["id"]


def test_an_expired_idempotency_key_makes_a_new_task_and_replays_that_one(api):
    body = {"task_type": "demo.noop"}
    first = api.post(TASKS, body, format="json", HTTP_IDEMPOTENCY_KEY="k-day")
    day_and_a_bit = timezone.now() - timedelta(seconds=86_401)
    IdempotencyKey.objects.update(created_at=day_and_a_bit)

    second = api.post(TASKS, {**body, "start": True}, format="json", HTTP_IDEMPOTENCY_KEY="k-day")
    replayed = api.post(TASKS, {**body, "start": True}, format="json", HTTP_IDEMPOTENCY_KEY="k-day")

    assert (first.status_code, second.status_code, replayed.status_code) == (201, 201, 200)
    assert second.json()["id"] != first.json()["id"]
    assert replayed.json()["id"] == second.json()["id"]
    assert Task.objects.count() == 2
    assert IdempotencyKey.objects.get().task_id == second.json()["id"]


@pytest.mark.parametrize("key", ["", " ", "x" * 256, "caf\u00e9"])
def test_malformed_idempotency_key_is_400(api, key):
    response = api.post(TASKS, {"task_type": "demo.noop"}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert_400(response, ["Idempotency-Key"])


# --- schema and docs ------------------------------------------------------------------------------


def test_openapi_schema_documents_actions_and_errors(api):
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    paths = schema["paths"]
    for path in ("/api/v1/tasks/{id}/start", "/api/v1/tasks/batch", "/api/v1/tasks/statistics"):
        assert path in paths
    start = paths["/api/v1/tasks/{id}/start"]["post"]["responses"]
    assert {"200", "404", "409"} <= set(start)
    assert {"400", "422"} <= set(paths["/api/v1/tasks"]["post"]["responses"])
    size = next(p for p in paths["/api/v1/tasks"]["get"]["parameters"] if p["name"] == "size")
    integer, empty = size["schema"]["anyOf"]
    assert (integer["minimum"], integer["maximum"]) == (1, 100)
    assert empty["maxLength"] == 0  # size= means the default
    assert "bearerAuth" in schema["components"]["securitySchemes"]
    assert {"401", "414", "429"} <= set(start)
    assert "413" in paths["/api/v1/tasks"]["post"]["responses"]
    execution = schema["components"]["schemas"]["TaskExecution"]
    assert "traceback" not in execution["required"]  # staff only: absent for others


def test_swagger_ui_and_browsable_api_render(api, make_task):
    assert api.get("/api/docs/").status_code == 200
    task = make_task()
    for url in (TASKS, f"{TASKS}/{task.pk}", f"{TASKS}/{task.pk}/events", "/api/v1/"):
        response = api.get(url, HTTP_ACCEPT="text/html")
        assert response.status_code == 200, url
        assert response["Content-Type"].startswith("text/html")


def test_run_after_with_an_unusual_offset_is_stored_in_utc(api):
    body = {"task_type": "demo.noop", "run_after": "2030-01-01T22:20:00+22:20"}
    response = api.post(TASKS, body, format="json")
    assert response.status_code == 201, response.json()
    assert Task.objects.get().run_after.isoformat() == "2030-01-01T00:00:00+00:00"


def test_browsable_api_offers_the_create_form(api):
    response = api.get(TASKS, HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b'name="task_type"' in response.content


def test_concurrent_idempotent_requests_create_one_task(api, monkeypatch):
    """The loser of the race finds no key, creates, hits the unique constraint, rolls back."""
    from taskcenter.api import idempotency

    body = {"task_type": "demo.noop"}
    first = api.post(TASKS, body, format="json", HTTP_IDEMPOTENCY_KEY="race")
    real_replay = idempotency._replay
    calls = []

    def blind_first_look(*args):
        calls.append(args)
        return None if len(calls) == 1 else real_replay(*args)

    monkeypatch.setattr(idempotency, "_replay", blind_first_look)
    second = api.post(TASKS, body, format="json", HTTP_IDEMPOTENCY_KEY="race")
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert Task.objects.count() == 1
    assert len(calls) == 2


def test_throttled_requests_get_a_json_429(api, monkeypatch):
    from django.core.cache import cache
    from rest_framework.throttling import UserRateThrottle

    cache.clear()
    monkeypatch.setattr(UserRateThrottle, "get_rate", lambda self: "2/min")
    responses = [api.get(TASKS) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert "throttled" in responses[-1].json()["detail"].lower()
    assert 0 < int(responses[-1]["Retry-After"]) <= 60
