"""Authentication, the issue_token command, owner scoping, staff access and executions."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.http import HttpRequest
from rest_framework.test import APIClient

from taskcenter import lifecycle
from taskcenter.models import Status, Task, TaskEvent
from taskcenter.models.tokens import ApiToken

pytestmark = pytest.mark.django_db

TASKS = "/api/v1/tasks"
EXECUTIONS = "/api/v1/task-executions"


def run_to_completion(task: Task) -> None:
    _, execution = lifecycle.claim_attempt(task, worker_id="w")
    lifecycle.complete_attempt(execution)


# --- authentication ---------------------------------------------------------------------------


def test_anonymous_is_401_with_bearer_challenge(anon_api):
    response = anon_api.get(TASKS)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "detail" in response.json()


@pytest.mark.parametrize("keyword", ["Bearer", "Token", "bearer"])
def test_token_keywords(user, keyword):
    _, key = ApiToken.objects.issue(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{keyword} {key}")
    assert client.get(TASKS).status_code == 200


@pytest.mark.parametrize("header", ["Bearer nope", "Bearer", "Bearer a b", "Bearer \x00"])
def test_bad_token_is_401(db, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert client.get(TASKS).status_code == 401


def test_session_auth_works_for_the_browsable_api(user, make_task):
    make_task()
    client = APIClient()
    client.login(request=HttpRequest(), username="alice", password="alice-pass-123")
    response = client.get(TASKS, HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"Task" in response.content
    # Unsafe methods with a session still need the CSRF token.
    csrf_client = APIClient(enforce_csrf_checks=True)
    csrf_client.login(request=HttpRequest(), username="alice", password="alice-pass-123")
    assert csrf_client.post(TASKS, {"task_type": "demo.noop"}, format="json").status_code == 403


@pytest.mark.parametrize(
    ("fetch_site", "expected"), [("same-origin", 201), ("same-site", 403), ("cross-site", 403)]
)
def test_a_browsers_same_origin_fetch_metadata_stands_for_the_csrf_token(
    user, fetch_site, expected
):
    """Browsers set Sec-Fetch-Site themselves (page scripts cannot): same-origin is the proof the
    token gives. Another port or subdomain (same-site) and other sites still need the token."""
    client = APIClient(enforce_csrf_checks=True)
    client.login(request=HttpRequest(), username="alice", password="alice-pass-123")
    response = client.post(
        TASKS, {"task_type": "demo.noop"}, format="json", HTTP_SEC_FETCH_SITE=fetch_site
    )
    assert response.status_code == expected, response.content
    assert Task.objects.count() == (1 if expected == 201 else 0)


def test_an_empty_bearer_header_leaves_the_session_in_charge(user):
    """A browser frontend with no token in its storage still sends "Bearer " (social-auto-upload's
    upload widget does): that is no credentials, not a wrong token."""
    client = APIClient()
    client.login(request=HttpRequest(), username="alice", password="alice-pass-123")
    client.credentials(HTTP_AUTHORIZATION="Bearer ")
    assert client.get(TASKS).status_code == 200
    client.logout()
    assert client.get(TASKS).status_code == 401


def test_issue_token_unknown_user(db):
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        call_command("issue_token", "ghost")


# --- scoping ------------------------------------------------------------------------------------


def test_list_shows_only_own_tasks(api, other_api, make_task, other_user):
    mine = make_task()
    make_task(owner=other_user)
    data = api.get(TASKS).json()
    assert [item["id"] for item in data["items"]] == [mine.pk]
    assert api.get(f"{TASKS}?owner=bob").json()["total"] == 0


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "", None),
        ("patch", "", {"task_name": "mine now"}),
        ("put", "", {"task_name": "mine now"}),
        ("delete", "", None),
        ("post", "/start", None),
        ("post", "/stop", None),
        ("post", "/cancel", None),
        ("post", "/retry", None),
        ("post", "/clone", None),
        ("get", "/events", None),
    ],
)
def test_other_users_task_is_404_everywhere(other_api, make_task, method, suffix, body):
    task = make_task("demo.noop")
    lifecycle.start_task(task)
    before = list(TaskEvent.objects.values_list("id", flat=True))
    response = getattr(other_api, method)(f"{TASKS}/{task.pk}{suffix}", body, format="json")
    assert response.status_code == 404
    assert response.json() == {"detail": "Task not found"}
    task.refresh_from_db()
    assert task.status == Status.QUEUED
    assert task.name == ""
    assert list(TaskEvent.objects.values_list("id", flat=True)) == before
    assert Task.objects.count() == 1


def test_other_users_executions_are_hidden(api, other_api, make_task):
    task = make_task("demo.noop", start=True)
    run_to_completion(task)
    execution = task.executions.get()
    assert other_api.get(f"{EXECUTIONS}/{execution.pk}").status_code == 404
    assert other_api.get(f"{EXECUTIONS}/task/{task.pk}").status_code == 404
    assert other_api.get(EXECUTIONS).json()["total"] == 0
    assert other_api.get(f"{EXECUTIONS}?task_id={task.pk}").json()["total"] == 0
    assert other_api.get(f"{TASKS}/statistics").json()["total"] == 0
    assert api.get(f"{EXECUTIONS}/{execution.pk}").status_code == 200


def test_staff_see_and_act_on_everyones_tasks(staff_api, make_task, staff_user):
    task = make_task("demo.noop")
    assert staff_api.get(TASKS).json()["total"] == 1
    assert staff_api.get(f"{TASKS}?owner=alice").json()["total"] == 1
    response = staff_api.post(f"{TASKS}/{task.pk}/cancel")
    assert response.status_code == 200
    assert TaskEvent.objects.filter(task=task).latest("id").actor_user == staff_user


# --- executions ---------------------------------------------------------------------------------


def test_execution_fields_and_staff_only_traceback(api, staff_api, make_task):
    task = make_task("demo.flaky", {"fail_times": 5}, start=True, account_id="acc-1")
    _, execution = lifecycle.claim_attempt(task, worker_id="worker-1")
    lifecycle.fail_attempt(execution, error="outage", traceback="Traceback ...")
    data = api.get(f"{EXECUTIONS}/{execution.pk}").json()
    assert data["task_id"] == task.pk
    assert data["status"] == "FAILED"
    assert data["account_id"] == "acc-1"
    assert data["proxy_id"] is None
    assert data["error_message"] == "outage"
    assert data["worker_id"] == "worker-1"
    assert isinstance(data["duration"], float)
    assert data["result_count"] == 0
    assert data["attempt"] == 1
    assert data["completed_at"]
    assert "traceback" not in data
    assert staff_api.get(f"{EXECUTIONS}/{execution.pk}").json()["traceback"] == "Traceback ..."


def test_executions_of_a_task_newest_first(api, make_task):
    task = make_task("demo.flaky", {"fail_times": 5}, start=True)
    for _ in range(2):
        _, execution = lifecycle.claim_attempt(task, worker_id="w")
        lifecycle.fail_attempt(execution, error="x", retry_delay=0)
    response = api.get(f"{EXECUTIONS}/task/{task.pk}")
    assert response.status_code == 200
    assert [e["attempt"] for e in response.json()] == [2, 1]
    empty = make_task("demo.noop")
    assert api.get(f"{EXECUTIONS}/task/{empty.pk}").json() == []
    assert api.get(f"{EXECUTIONS}/task/999999").status_code == 404


def test_execution_list_filters(api, make_task):
    done = make_task("demo.noop", start=True)
    run_to_completion(done)
    failing = make_task("demo.flaky", {"fail_times": 5}, start=True)
    _, execution = lifecycle.claim_attempt(failing, worker_id="w")
    lifecycle.fail_attempt(execution, error="x", permanent=True)
    assert api.get(EXECUTIONS).json()["total"] == 2
    assert api.get(f"{EXECUTIONS}?task_id={done.pk}").json()["total"] == 1
    assert api.get(f"{EXECUTIONS}?status=FAILED").json()["items"][0]["task_id"] == failing.pk
    assert api.get(f"{EXECUTIONS}?status=FAILED,COMPLETED").json()["total"] == 2
    assert api.get(f"{EXECUTIONS}?size=1&page=2").json()["total"] == 2
    for bad in ("task_id=abc", f"task_id={'9' * 30}", "status=BOGUS", "started_after=yesterday"):
        response = api.get(f"{EXECUTIONS}?{bad}")
        assert response.status_code == 400, bad
        assert response.json()["detail"][0]["loc"] == [bad.split("=")[0]]
