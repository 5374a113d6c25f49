"""``run_service`` as a real process tree: what its worker observes and what each of gunicorn's
workers counts show up added together on the web's ``/metrics``."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest
import requests

from taskcenter import lifecycle
from taskcenter.management.commands.run_service import prepare_metrics_dir
from taskcenter.models import Status, Task
from tests.support.metrics import samples, value
from tests.support.processes import wait_for
from tests.support.service import children_of, start_service, stop_service, wait_until_running

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]


def test_an_attempt_run_by_the_worker_shows_on_the_web_servers_metrics(
    transactional_db, tmp_path, user
):
    process, port, log = start_service(tmp_path, "--concurrency", "2")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_running(tmp_path)
        # gunicorn's workers may still be loading Django: the first answer may take seconds.
        assert requests.get(f"{base}/healthz", timeout=60).status_code == 200

        tasks = [
            lifecycle.create_task(task_type="demo.noop", owner=user, start=True) for _ in range(3)
        ]
        wait_for(
            lambda: (
                Task.objects.filter(pk__in=[t.pk for t in tasks], status=Status.COMPLETED).count()
                == 3
            ),
            timeout=60,
        )
        # Requests spread over gunicorn's two processes; the scrape adds up both.
        for _ in range(8):
            assert requests.get(f"{base}/api/v1/tasks", timeout=30).status_code == 401

        def scraped():
            found = samples(requests.get(f"{base}/metrics", timeout=30).text)
            labels = {"kind": "demo.noop", "outcome": "completed"}
            if value(found, "taskcenter_attempt_duration_seconds_count", **labels) >= 3:
                return found
            return None  # the worker writes after the task's commit: give it a moment

        found = wait_for(scraped, timeout=30, every=0.5)
        labels = {"kind": "demo.noop", "outcome": "completed"}
        assert value(found, "taskcenter_attempt_duration_seconds_count", **labels) == 3
        assert value(found, "taskcenter_attempt_duration_seconds_sum", **labels) > 0
        requests_total = {"method": "GET", "route": "/api/v1/tasks", "status": "401"}
        assert value(found, "taskcenter_http_requests_total", **requests_total) == 8
        assert value(found, "taskcenter_tasks", status="COMPLETED", kind="demo.noop") == 3

        metrics_dir = Path(environment(children_of(process.pid)[0])["PROMETHEUS_MULTIPROC_DIR"])
        assert list(metrics_dir.glob("histogram_*.db"))
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=40) == 0
        assert not metrics_dir.exists()  # a directory it made is removed on the way out
    finally:
        stop_service(process)
        log.close()


def environment(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as handle:
        pairs = handle.read().decode().split("\0")
    return dict(pair.split("=", 1) for pair in pairs if "=" in pair)


def test_a_given_metrics_directory_is_kept_but_emptied_of_an_earlier_runs_values(
    tmp_path, monkeypatch
):
    given = tmp_path / "metrics"
    given.mkdir()
    (given / "counter_4242.db").write_bytes(b"stale")
    (given / "notes.txt").write_text("not ours")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(given))

    assert prepare_metrics_dir() == (str(given), False)

    assert sorted(p.name for p in given.iterdir()) == ["notes.txt"]
