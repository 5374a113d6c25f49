"""Scrape kinds in a real worker process, and the sandbox as its own management command."""

import os
import socket
import subprocess
import sys

import pytest
import requests

from taskcenter.models import EventVerb, Status, Task, TaskEvent
from tests.support.processes import ROOT, wait_for

pytestmark = pytest.mark.slow


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


def _run_two(start_worker, make_task, platform, accounts: tuple[str, str]) -> dict[str, list]:
    """Two 3-page scrapes (elonmusk, jack) on ``accounts`` under one worker running two
    attempts at once; returns each username's platform requests, in arrival order."""
    platform.control(slow_ms=250)  # every page takes a quarter second
    tasks = [
        make_task("USER_TWEETS", {"username": name, "limit": 300}, start=True, account_id=account)
        for name, account in zip(("elonmusk", "jack"), accounts, strict=True)
    ]
    start_worker(
        "--concurrency",
        "2",
        env={
            "SCRAPING_BASE_URL": platform.url,
            "SCRAPING_TOKEN": "sandbox-token",
            "SCRAPING_ACCOUNT_WAIT": "0.2",
        },
    )
    ids = [task.pk for task in tasks]
    wait_for(
        lambda: Task.objects.filter(pk__in=ids, status=Status.COMPLETED).count() == 2, timeout=40
    )
    for task in tasks:
        assert task.results.count() == 300
    by_user: dict[str, list] = {"elonmusk": [], "jack": []}
    for entry in sorted(platform.requests, key=lambda e: e["at"]):
        by_user[entry["path"].split("/")[3]].append(entry)
    assert [len(entries) for entries in by_user.values()] == [3, 3]
    return by_user


def test_two_tasks_on_one_account_never_use_it_at_the_same_time(start_worker, make_task, platform):
    by_user = _run_two(start_worker, make_task, platform, ("account-1", "account-1"))

    first, second = sorted(by_user.values(), key=lambda entries: entries[0]["at"])
    # Every page of one task was answered before the other task asked for its first page.
    assert second[0]["at"] >= first[-1]["at"] + 0.25
    # The second task waited for the account without failing, and was told who held it.
    waiter = Task.objects.get(parameters__username=second[0]["path"].split("/")[3])
    holder = Task.objects.get(parameters__username=first[0]["path"].split("/")[3])
    messages = list(
        TaskEvent.objects.filter(task=waiter, verb=EventVerb.WAITING).values_list(
            "data__message", flat=True
        )
    )
    assert messages
    assert all(m == f"Account account-1 is in use by task #{holder.pk}" for m in messages)
    assert waiter.executions.count() == 1  # waiting is not a failed attempt
    assert {e["account_id"] for e in first + second} == {"account-1"}


def test_tasks_on_different_accounts_run_at_the_same_time(start_worker, make_task, platform):
    by_user = _run_two(start_worker, make_task, platform, ("account-1", "account-2"))

    first, second = sorted(by_user.values(), key=lambda entries: entries[0]["at"])
    assert second[0]["at"] < first[-1]["at"]  # the second began before the first finished
    assert {e["account_id"] for e in first} != {e["account_id"] for e in second}


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
