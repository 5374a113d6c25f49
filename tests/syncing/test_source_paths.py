"""A data source id stays inside its URL path segment: the service token goes nowhere else.

``.`` and ``..`` are dot segments that every URL library resolves away (``/api/datasources/..
/records`` is sent as ``/api/records``), so they are refused when a task is made and again when
one runs; any other id is percent-encoded into its one segment, which the real sandbox data
source proves by logging the exact path it was sent.
"""

from __future__ import annotations

import pytest

from sandbox.platform import DEFAULT_TOKEN
from syncing.providers import DataSourceClient
from taskcenter.errors import PermanentError
from taskcenter.execution.runner import run_attempt
from taskcenter.models import ExecutionStatus, Status, Task

pytestmark = pytest.mark.django_db

DOT_IDS = [".", "..", "...", " .. "]


@pytest.fixture
def platform(platform, settings):
    """The sandbox platform, and the data sync settings pointing at it."""
    settings.SYNCING = {**settings.SYNCING, "BASE_URL": platform.url, "TOKEN": DEFAULT_TOKEN}
    return platform


@pytest.mark.parametrize("source_id", DOT_IDS)
def test_sync_dialect_refuses_dot_ids_naming_the_field_and_creates_nothing(
    api, platform, source_id
):
    response = api.post(
        "/api/sync/tasks",
        {"data_source_id": source_id, "task_type": "full_sync"},
        format="json",
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_argument"
    assert [f["field"] for f in error["fields"]] == ["data_source_id"]
    assert "dots only" in error["message"]
    assert not Task.objects.exists()
    assert platform.requests == []


@pytest.mark.parametrize("source_id", DOT_IDS)
def test_canonical_api_refuses_dot_ids_for_both_sync_kinds(api, platform, source_id):
    for kind in ("sync.full_sync", "sync.incremental_sync"):
        response = api.post(
            "/api/v1/tasks",
            {"task_type": kind, "parameters": {"data_source_id": source_id}, "auto_start": True},
            format="json",
        )

        assert response.status_code == 422, response.json()
        [error] = response.json()["detail"]
        assert error["loc"] == ["body", "parameters", "data_source_id"]
    assert not Task.objects.exists()
    assert platform.requests == []


def test_a_stored_dot_id_fails_at_run_time_without_a_request(make_task, platform):
    task = make_task("sync.full_sync", {"data_source_id": "ds_ok"}, start=True)
    # A row written before ids were checked: the runner must refuse it as well.
    Task.objects.filter(pk=task.pk).update(
        parameters={**task.parameters, "data_source_id": ".."}, data_source_id=".."
    )

    run_attempt(task.pk, worker_id="test")

    task.refresh_from_db()
    assert task.status == Status.FAILED
    assert "Refusing data source id '..'" in task.error_message
    assert task.executions.get().status == ExecutionStatus.FAILED
    assert platform.requests == []


@pytest.mark.parametrize(
    ("source_id", "segment"),
    [
        ("a/b", "a%2Fb"),
        ("../api", "..%2Fapi"),
        ("a?b=1", "a%3Fb%3D1"),
        ("a#b", "a%23b"),
        ("%2e%2e", "%252e%252e"),
        ("..%2f", "..%252f"),
        ("a b\\c@d", "a%20b%5Cc%40d"),
    ],
)
def test_any_other_id_stays_in_its_segment_as_the_sandbox_sees_it(platform, source_id, segment):
    client = DataSourceClient()

    # The sandbox knows no such source (404); what matters is where the request went.
    with pytest.raises(PermanentError, match="Data source not found"):
        client.fetch_page(source_id, batch_size=5)

    [seen] = platform.requests
    assert seen["method"] == "GET"
    assert seen["path"] == f"/api/datasources/{segment}/records"
    assert seen["query"] == {"batch_size": "5"}


def test_a_plain_id_still_syncs_through_the_same_path(make_task, platform):
    task = make_task("sync.full_sync", {"data_source_id": "ds.v2:eu-1"}, start=True)
    run_attempt(task.pk, worker_id="test")

    task.refresh_from_db()
    assert task.status == Status.COMPLETED, task.error_message
    assert {r["path"] for r in platform.requests} == {"/api/datasources/ds.v2%3Aeu-1/records"}
