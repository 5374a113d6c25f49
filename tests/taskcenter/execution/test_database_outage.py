"""A database that goes away (a restart, a failover) is never the task's fault or a 500.

The database is made really unreachable: the connection's settings are pointed at a port where
nothing listens (PostgreSQL) or a file that cannot be opened (SQLite), or, on PostgreSQL, the
server is told to end a connection, as a restart does. The whole restart of a real server
under load is in ``test_database_restart``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
import pytest
from django.db import connection
from django.db.utils import OperationalError
from django.urls import reverse

from taskcenter.execution import runner
from taskcenter.kinds import task_kind
from taskcenter.models import EventVerb, ExecutionStatus, Status, Task


@contextlib.contextmanager
def database_unreachable() -> Iterator[None]:
    """Until the block ends, every new connection of this thread fails, as during a restart."""
    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = "/nonexistent/taskcenter/restarting.sqlite3"
    else:
        connection.settings_dict.update(HOST="127.0.0.1", PORT="1")
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


def end_this_connection_on_the_server() -> None:
    """What a server restart does to a connection: the server ends it, the client learns later."""
    pid = connection.connection.info.backend_pid
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"] or "localhost",
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        password=settings["PASSWORD"],
        dbname=settings["NAME"],
        autocommit=True,
    ) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


@task_kind("test.database_drops", max_attempts=1)
def database_drops(task, ctx):
    """The database connection drops under the handler: its query raises, as Django's would."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    raise OperationalError("server closed the connection unexpectedly")


@task_kind("test.outlives_its_connection", max_attempts=1)
def outlives_its_connection(task, ctx):
    """The server ends this attempt's connection mid-run; progress and the result must land."""
    ctx.progress(10, "before")
    end_this_connection_on_the_server()
    if task.parameters.get("then") == "progress":
        ctx.progress(50, "connection dead", force=True)  # carries on, does not fail
    return {"done": True}  # else the completion write is the first to meet the dead link


# --- the web side ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_api_answers_503_with_retry_after_while_the_database_is_away(api):
    with database_unreachable():
        listed = api.get("/api/v1/tasks")
        started = api.post("/api/v1/tasks/1/start")

    for response in (listed, started):
        assert response.status_code == 503, response.content
        assert response["Retry-After"] == "5"
        assert response.json() == {"detail": "The database is unavailable; try again shortly."}
    # Back at once when the database is.
    assert api.get("/api/v1/tasks").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_an_envelope_dialect_answers_503_in_its_own_envelope(api):
    with database_unreachable():
        response = api.get("/api/sync/tasks")

    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "5"
    body = response.json()
    assert body["success"] is False
    assert "database is unavailable" in body["error"]["message"]


@pytest.mark.django_db(transaction=True)
def test_a_plain_django_view_answers_503_not_a_500_page(client, staff_user):
    client.force_login(staff_user)
    with database_unreachable():
        response = client.get(reverse("admin:taskcenter_task_changelist"))

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response["Content-Type"].startswith("text/plain")


# --- the worker side -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_handler_whose_database_dropped_is_requeued_not_failed(make_task):
    task = make_task("test.database_drops", start=True)

    outcome = runner.run_attempt(task.pk, worker_id="w1")

    assert outcome == "lost"
    task.refresh_from_db()
    assert task.status == Status.QUEUED
    assert (task.attempts, task.lost_attempts, task.max_attempts) == (0, 1, 1)
    assert task.error_message == ""
    execution = task.executions.get()
    assert execution.status == ExecutionStatus.LOST
    assert execution.error_message == (
        "Database unavailable during the attempt: "
        "OperationalError: server closed the connection unexpectedly"
    )
    lost = task.events.get(verb=EventVerb.LOST)
    assert (lost.actor, lost.to_status) == ("worker:w1", Status.QUEUED)


@pytest.mark.parametrize("then", ["progress", "complete"])
@pytest.mark.django_db(transaction=True)
def test_an_attempt_whose_connection_the_server_ended_still_completes_once(make_task, caplog, then):
    if connection.vendor != "postgresql":
        pytest.skip("ending a connection from the server side needs PostgreSQL")
    task = make_task("test.outlives_its_connection", {"then": then}, start=True)

    outcome = runner.run_attempt(task.pk, worker_id="w1")

    assert outcome == "completed"
    expected = "could not record progress" if then == "progress" else "while completing task"
    assert expected in caplog.text
    task.refresh_from_db()
    assert task.status == Status.COMPLETED
    assert task.result == {"done": True}
    assert (task.attempts, task.lost_attempts) == (1, 0)
    assert list(task.executions.values_list("status", flat=True)) == [ExecutionStatus.COMPLETED]
    assert Task.objects.filter(pk=task.pk, progress=100).exists()
