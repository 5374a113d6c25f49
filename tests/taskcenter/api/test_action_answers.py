"""An action's answer is the task as the action left it, in every dialect that answers with one.

A worker woken by the action's commit may claim the task before the view answers; here one does
so every time (its claim is run at the commit itself), and the answer must still say what the
action did: a retried task is queued, not running.
"""

from __future__ import annotations

import pytest

from taskcenter import lifecycle
from taskcenter.models import Status, Task
from tests.support.lifecycle import claim_at_commit

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def claimed_at_commit(monkeypatch) -> None:
    claim_at_commit(monkeypatch)


@pytest.mark.usefixtures("claimed_at_commit")
@pytest.mark.parametrize("action", ["start", "retry"])
def test_the_canonical_api_answers_queued(api, make_task, user, action):
    task = make_task("demo.noop")
    if action == "retry":
        lifecycle.cancel_task(task, actor=user)

    response = api.post(f"/api/v1/tasks/{task.pk}/{action}")

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "QUEUED"
    assert response.json()["owner"] == user.get_username()
    assert Task.objects.get(pk=task.pk).status == Status.RUNNING, "the worker did claim it"


@pytest.mark.usefixtures("claimed_at_commit")
def test_the_data_sync_dialect_answers_pending(api):
    created = api.post(
        "/api/sync/tasks", {"data_source_id": "ds_fast", "task_type": "full_sync"}, format="json"
    )
    public = created.json()["data"]["id"]
    assert api.post(f"/api/sync/tasks/{public}/cancel").status_code == 200

    response = api.post(f"/api/sync/tasks/{public}/retry")

    assert response.status_code == 200, response.json()
    assert response.json()["data"]["status"] == "pending"
    pk = int(public.removeprefix("task_"))
    assert Task.objects.get(pk=pk).status == Status.RUNNING
