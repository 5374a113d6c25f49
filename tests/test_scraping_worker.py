"""Scrape kinds in a real worker process, and the sandbox as its own management command."""

import os
import socket
import subprocess
import sys

import pytest
import requests

from sandbox.platform import SandboxPlatform
from taskcenter.models import Status, Task

from .conftest import ROOT, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def platform():
    with SandboxPlatform() as running:
        yield running


def test_worker_process_scrapes_through_the_sandbox_and_retries_a_rate_limit(
    start_worker, make_task, platform
):
    platform.control(rate_limit_next=1, retry_after=1)
    task = make_task(
        "USER_TWEETS",
        {"username": "elonmusk", "limit": 130},
        start=True,
        account_id="account-123",
    )
    start_worker(env={"SCRAPING_BASE_URL": platform.url, "SCRAPING_TOKEN": "sandbox-token"})

    wait_for(lambda: Task.objects.filter(pk=task.pk, status=Status.COMPLETED).exists(), timeout=30)

    task.refresh_from_db()
    assert task.result == {"items": 130, "pages": 2}
    assert task.results.count() == 130
    assert task.executions.count() == 2
    assert [r["status"] for r in platform.requests] == [429, 200, 200]
    assert {r["account_id"] for r in platform.requests} == {"account-123"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_run_sandbox_platform_command_serves_the_api():
    port = _free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "taskcenter.test_settings"}
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "run_sandbox_platform", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api/users/elonmusk"

    def answered():
        try:
            return requests.get(url, headers={"Authorization": "Bearer sandbox-token"}, timeout=1)
        except requests.ConnectionError:
            return None

    try:
        response = wait_for(answered, timeout=20, every=0.1)
        assert response.status_code == 200
        assert response.json()["data"]["username"] == "elonmusk"
    finally:
        process.terminate()
        process.wait(timeout=10)
