"""The task event streams over real HTTP, from gunicorn with uvicorn workers as ``run_service``
starts it, on the test database: events written by this process (lifecycle calls) reach the
streams the server holds open, through its event feed (a poll on SQLite, LISTEN on PostgreSQL).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests

from taskcenter import lifecycle
from taskcenter.models import Task, TaskEvent
from taskcenter.models.tokens import ApiToken
from tests.support.asgi_server import asgi_server
from tests.support.sse import EventStream

pytestmark = pytest.mark.slow

HEARTBEAT_SECONDS = 0.5


@pytest.fixture
def server(transactional_db, tmp_path) -> Iterator[str]:
    """gunicorn + one uvicorn worker on the test database; its base URL."""
    env = {"TASKCENTER_STREAM_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS)}
    with asgi_server(tmp_path, env=env) as base:
        yield base


def bearer(user) -> dict[str, str]:
    _, key = ApiToken.objects.issue(user)
    return {"Authorization": f"Bearer {key}"}


def open_stream(server: str, user, path: str = "/api/v1/events/stream", **query) -> EventStream:
    stream = EventStream(server, path, query, headers=bearer(user))
    assert stream.status == 200, stream.body()
    assert stream.header("Content-Type") == "text/event-stream"
    # Subscribed once the first bytes are out: what happens from here on is delivered.
    stream.wait_for_comment("connected")
    return stream


def next_events(stream: EventStream, count: int) -> list[dict]:
    messages = stream.messages()
    return [json.loads(next(messages)) for _ in range(count)]


def events_of(task: Task) -> list[int]:
    return list(TaskEvent.objects.filter(task=task).order_by("id").values_list("id", flat=True))


def test_events_of_a_task_arrive_with_the_row_id_and_the_task_as_it_is(server, user, make_task):
    stream = open_stream(server, user)
    try:
        task = make_task("demo.noop", start=True)

        [event] = next_events(stream, 1)
        row = TaskEvent.objects.get(task=task)
        assert event["id"] == row.pk
        assert (event["task_id"], event["verb"], event["to_status"]) == (
            task.pk,
            "created",
            "QUEUED",
        )
        assert event["task"]["status"] == "QUEUED"

        lifecycle.cancel_task(task)
        [cancelled] = next_events(stream, 1)
        assert cancelled["verb"] == "cancelled"
        assert cancelled["id"] == events_of(task)[-1]
    finally:
        stream.close()


def test_the_stream_sends_keep_alive_comments_while_nothing_happens(server, user):
    stream = open_stream(server, user)
    try:
        stream.wait_for_comment("keep-alive")
    finally:
        stream.close()


def test_filters_select_tasks_as_the_task_list_does(server, user, make_task):
    stream = open_stream(server, user, task_type="demo.countdown", status="QUEUED,RUNNING")
    try:
        make_task("demo.noop", start=True)  # another type
        make_task("demo.countdown", parameters={"seconds": 1})  # PENDING: not selected
        wanted = make_task("demo.countdown", parameters={"seconds": 1}, start=True)

        [event] = next_events(stream, 1)
        assert (event["task_id"], event["verb"]) == (wanted.pk, "created")
    finally:
        stream.close()


def test_another_users_events_are_not_delivered_but_staff_sees_them(
    server, user, other_user, staff_user, make_task
):
    mine, everyone = open_stream(server, user), open_stream(server, staff_user)
    try:
        theirs = make_task("demo.noop", owner=other_user, start=True)
        ours = make_task("demo.noop", start=True)

        [event] = next_events(mine, 1)
        assert event["task_id"] == ours.pk
        assert [e["task_id"] for e in next_events(everyone, 2)] == [theirs.pk, ours.pk]
    finally:
        mine.close()
        everyone.close()


def test_another_users_task_stream_is_a_404_and_ones_own_streams_its_events(
    server, user, other_user, make_task
):
    theirs = make_task("demo.noop", owner=other_user)
    refused = EventStream(server, f"/api/v1/tasks/{theirs.pk}/stream", {}, headers=bearer(user))
    assert refused.status == 404
    assert json.loads(refused.body())["detail"] == "Task not found"
    refused.close()

    mine = make_task("demo.noop")
    other = make_task("demo.noop")
    stream = open_stream(server, user, f"/api/v1/tasks/{mine.pk}/stream")
    try:
        lifecycle.start_task(other)
        lifecycle.start_task(mine)
        [event] = next_events(stream, 1)
        assert (event["task_id"], event["verb"]) == (mine.pk, "queued")
    finally:
        stream.close()


@pytest.mark.parametrize("how", ["header", "query"])
def test_a_reconnect_with_last_event_id_replays_exactly_the_missed_events(
    server, user, other_user, make_task, how
):
    stream = open_stream(server, user)
    task = make_task("demo.noop")
    [seen] = next_events(stream, 1)
    stream.close()

    # While away: three events of ours, one of someone else's.
    lifecycle.start_task(task)
    make_task("demo.noop", owner=other_user)
    lifecycle.stop_task(task)
    lifecycle.retry_task(task)
    missed = [pk for pk in events_of(task) if pk > seen["id"]]
    assert len(missed) == 3

    if how == "header":
        again = EventStream(
            server,
            "/api/v1/events/stream",
            {"last_event_id": "0"},  # the URL's id: the header, newer, wins
            headers={**bearer(user), "Last-Event-ID": str(seen["id"])},
        )
    else:
        again = EventStream(
            server,
            "/api/v1/events/stream",
            {"last_event_id": str(seen["id"])},
            headers=bearer(user),
        )
    try:
        assert again.status == 200
        replayed = next_events(again, 3)
        assert [e["id"] for e in replayed] == missed
        # And nothing else before what happens next.
        lifecycle.cancel_task(task)
        [live] = next_events(again, 1)
        assert (live["id"], live["verb"]) == (events_of(task)[-1], "cancelled")
    finally:
        again.close()


@pytest.mark.parametrize(
    ("path", "query", "headers", "field"),
    [
        ("/api/v1/events/stream", {"status": "BOGUS"}, {}, "status"),
        ("/api/v1/events/stream", {"created_after": "yesterday"}, {}, "created_after"),
        ("/api/v1/events/stream", {"last_event_id": "-1"}, {}, "last_event_id"),
        ("/api/v1/events/stream", {}, {"Last-Event-ID": "abc"}, "Last-Event-ID"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_field(server, user, path, query, headers, field):
    stream = EventStream(server, path, query, headers={**bearer(user), **headers})
    try:
        assert stream.status == 400
        body = json.loads(stream.body())
        assert [error["loc"][-1] for error in body["detail"]] == [field]
    finally:
        stream.close()


def test_anonymous_is_a_401_and_a_session_cookie_authenticates(server, user, client, settings):
    anonymous = EventStream(server, "/api/v1/events/stream", {})
    assert anonymous.status == 401
    anonymous.close()

    client.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    stream = EventStream(server, "/api/v1/events/stream", {}, headers={"Cookie": cookie})
    try:
        assert stream.status == 200
        stream.wait_for_comment("connected")
    finally:
        stream.close()


def test_the_rest_of_the_site_still_works_under_asgi(server, user):
    # The API, the admin's login page and its static files (whitenoise) through uvicorn.
    assert requests.get(f"{server}/api/v1/tasks", headers=bearer(user), timeout=10).ok
    login = requests.get(f"{server}/admin/login/", timeout=10)
    assert login.status_code == 200
    assert "csrfmiddlewaretoken" in login.text
