"""The API over real HTTP: a Bearer token and a real worker process.

schemathesis over every operation: ``test_api_schema``.
"""

from __future__ import annotations

import pytest
import requests

from taskcenter.models.tokens import ApiToken
from tests.support.processes import wait_for

pytestmark = pytest.mark.slow


def test_create_start_and_watch_a_task_complete_over_http(live_server, start_worker, user):
    _, key = ApiToken.objects.issue(user)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    base = f"{live_server.url}/api/v1"

    created = session.post(
        f"{base}/tasks",
        json={
            "task_name": "live",
            "task_type": "demo.countdown",
            "parameters": {"seconds": 1, "interval": 0.2},
        },
        timeout=10,
    )
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    assert created.json()["status"] == "PENDING"

    started = session.post(f"{base}/tasks/{task_id}/start", timeout=10)
    assert started.status_code == 200
    assert started.json()["status"] == "QUEUED"
    again = session.post(f"{base}/tasks/{task_id}/start", timeout=10)
    assert again.status_code == 409
    assert again.json()["status"] in {"QUEUED", "RUNNING"}

    start_worker("--concurrency", "2")

    def completed():
        data = session.get(f"{base}/tasks/{task_id}", timeout=10).json()
        return data if data["status"] == "COMPLETED" else None

    task = wait_for(completed, timeout=30)
    assert task["progress"] == 100
    assert task["result"] == {"counted_seconds": 1}
    [execution] = session.get(f"{base}/task-executions/task/{task_id}", timeout=10).json()
    assert execution["status"] == "COMPLETED"
    assert execution["duration"] > 0
    verbs = [
        e["verb"] for e in session.get(f"{base}/tasks/{task_id}/events", timeout=10).json()["items"]
    ]
    assert verbs[:3] == ["created", "queued", "started"]
    assert verbs[-1] == "completed"
    assert requests.get(f"{base}/tasks/{task_id}", timeout=10).status_code == 401
