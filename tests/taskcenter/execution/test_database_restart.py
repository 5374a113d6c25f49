"""PostgreSQL restarted under load: 200 tasks on 2 real workers, API calls all the while.

Everything runs against a PostgreSQL server of the test's own (``throwaway_postgres``), so the
restart hits no other test run: a gunicorn serving the API (uvicorn workers, as ``run_service``
starts it, each with its pool of connections), two ``run_worker`` processes, and
clients starting and reading tasks over HTTP. The server is restarted (fast shutdown, as
``pg_ctlcluster ... restart`` does) while attempts run and starts arrive. Afterwards every task
is COMPLETED by exactly one execution (``demo.sleep`` does not touch the database, so only an
execution of its own runs it: one execution each means it ran once), none FAILED, and no API
call answered 500; a call that met the server down got 503 with Retry-After and succeeded on
the retry it asked for.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import psycopg
import pytest
import requests
from django.db import connection

from tests.support.processes import ROOT, WorkerProcess
from tests.support.throwaway_postgres import ThrowawayPostgres, free_port, missing_reason

# A fresh server, its migrations and 200 attempts take a while on a busy machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

TASKS = 200
SLEEP_MS = 300
RESTART_AFTER_COMPLETED = 60
DEADLINE = 300.0
SETUP_USER = (
    "from django.contrib.auth import get_user_model\n"
    "from taskcenter.models.tokens import ApiToken\n"
    "user = get_user_model().objects.create_user('restart', password='restart-pass-123')\n"
    "print(ApiToken.objects.issue(user)[1])\n"
)


@pytest.fixture
def postgres():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: runs in the PostgreSQL suite")
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    server = ThrowawayPostgres()
    try:
        server.start()
        yield server
    finally:
        server.stop()


def environment(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "taskcenter.test_settings",
        "DATABASE_URL": database_url,
        "PYTHONUNBUFFERED": "1",
    }


def manage(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return done.stdout


def query(url: str, sql: str) -> list[tuple] | None:
    """Rows of ``sql``, or None while the server is down."""
    try:
        with psycopg.connect(url, connect_timeout=5) as db:
            return db.execute(sql).fetchall()
    except psycopg.OperationalError:
        return None


def statuses(url: str) -> Counter:
    rows = query(url, "SELECT status, count(*) FROM taskcenter_task GROUP BY status")
    return Counter(dict(rows or []))


def settled(url: str) -> bool:
    """No task is waiting or running any more (and the server answers)."""
    rows = query(url, "SELECT count(*) FROM taskcenter_task WHERE status IN ('QUEUED', 'RUNNING')")
    return rows is not None and rows[0][0] == 0 and statuses(url)["PENDING"] == 0


def exit_code(worker: WorkerProcess) -> int | None:
    try:
        return worker.terminate(timeout=60)
    except subprocess.TimeoutExpired:
        return None


@dataclass
class ApiCalls:
    """Every answer the clients got, and the calls that ended in an error."""

    codes: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, session: requests.Session, method: str, url: str, **kwargs) -> int:
        """Make the call, honouring Retry-After on 503; returns the final status code."""
        retried = False
        for _ in range(20):
            response = session.request(method, url, timeout=60, **kwargs)
            with self.lock:
                self.codes[response.status_code] += 1
            if response.status_code == 503:
                assert response.headers.get("Retry-After"), "a 503 must say when to retry"
                time.sleep(float(response.headers["Retry-After"]))
                retried = True
                continue
            # A start whose commit landed just before the connection broke is refused on the
            # retry (409: it is queued already); that is the first call's success.
            if response.status_code < 300 or (retried and response.status_code == 409):
                return response.status_code
            with self.lock:
                self.errors.append(f"{method} {url} -> {response.status_code} {response.text}")
            return response.status_code
        with self.lock:
            self.errors.append(f"{method} {url}: still 503 after 20 tries")
        return 503


class Clients:
    """One client starts the tasks one by one; another reads the list and details meanwhile."""

    def __init__(self, base: str, token: str, task_ids: list[int]) -> None:
        self.base, self.task_ids = base, task_ids
        self.calls = ApiCalls()
        self.done = threading.Event()
        self.session_headers = {"Authorization": f"Bearer {token}"}
        self.threads = [
            threading.Thread(target=self._start_all, name="starter"),
            threading.Thread(target=self._read, name="reader"),
        ]

    def session(self) -> requests.Session:
        session = requests.Session()
        session.headers.update(self.session_headers)
        return session

    def _start_all(self) -> None:
        session = self.session()
        for task_id in self.task_ids:
            self.calls.call(session, "POST", f"{self.base}/api/v1/tasks/{task_id}/start")
            time.sleep(0.02)

    def _read(self) -> None:
        session = self.session()
        n = 0
        while not self.done.is_set():
            task_id = self.task_ids[n % len(self.task_ids)]
            self.calls.call(session, "GET", f"{self.base}/api/v1/tasks?size=20")
            self.calls.call(session, "GET", f"{self.base}/api/v1/tasks/{task_id}")
            n += 1
            time.sleep(0.02)

    def __enter__(self) -> Clients:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.done.set()
        for thread in self.threads:
            thread.join(timeout=120)


def wait_until(predicate, *, timeout: float, every: float = 0.2, fail: bool = True) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    if fail:
        pytest.fail(f"Timed out after {timeout}s waiting for {predicate}")
    return False


def test_a_database_restart_under_load_loses_fails_and_doubles_nothing(postgres, tmp_path):
    env = environment(postgres.url)
    manage("migrate", "--noinput", env=env)
    token = manage("shell", "-c", SETUP_USER, env=env).strip().splitlines()[-1]

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    web_log = (tmp_path / "gunicorn.log").open("w")
    web = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            # As run_service serves it: ASGI, where each process keeps a pool of sessions that
            # the restart breaks all at once.
            "taskcenter.asgi:application",
            "--worker-class",
            "taskcenter.web_worker.WebWorker",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
        ],
        cwd=ROOT,
        env=env,
        stdout=web_log,
        stderr=subprocess.STDOUT,
    )
    workers: list[WorkerProcess] = []
    try:
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {token}"

        def web_ready() -> bool:
            try:
                return api.get(f"{base}/api/v1/tasks", timeout=5).status_code == 200
            except requests.ConnectionError:
                return False

        wait_until(web_ready, timeout=60)
        task_ids = []
        for n in range(TASKS):
            created = api.post(
                f"{base}/api/v1/tasks",
                json={
                    "name": f"restart {n}",
                    "task_type": "demo.sleep",
                    "parameters": {"ms": SLEEP_MS},
                },
                timeout=60,
            )
            assert created.status_code == 201, created.text
            task_ids.append(created.json()["id"])

        for name in ("one", "two"):
            workers.append(
                WorkerProcess(
                    "--worker-id", name, "--concurrency", "4", env={"DATABASE_URL": postgres.url}
                )
            )

        with Clients(base, token, task_ids) as clients:
            wait_until(
                lambda: statuses(postgres.url)["COMPLETED"] >= RESTART_AFTER_COMPLETED, timeout=120
            )
            at_restart = statuses(postgres.url)
            restart_started = time.monotonic()
            postgres.restart()
            restart_took = time.monotonic() - restart_started
            # Not failing here: the figures below say what went wrong.
            wait_until(
                lambda: settled(postgres.url),
                timeout=DEADLINE,
                fail=False,
            )
        calls = clients.calls

        exits = [exit_code(worker) for worker in workers]
        final = statuses(postgres.url)
        executions = query(
            postgres.url,
            "SELECT task_id, count(*), count(*) FILTER (WHERE status = 'COMPLETED') "
            "FROM taskcenter_taskexecution GROUP BY task_id",
        )
        execution_statuses = Counter(
            dict(
                query(
                    postgres.url,
                    "SELECT status, count(*) FROM taskcenter_taskexecution GROUP BY status",
                )
            )
        )
        failed_tasks = final["FAILED"]
        doubled = sorted(task_id for task_id, runs, _ in executions if runs > 1)
        completed_by_one = sum(1 for _, runs, completed in executions if runs == completed == 1)
        figures = (
            f"restart took {restart_took:.1f}s with {at_restart['COMPLETED']} of {TASKS} completed "
            f"({at_restart['RUNNING']} running, {at_restart['QUEUED']} queued); after: "
            f"completed={final['COMPLETED']} failed={failed_tasks} doubled={len(doubled)} "
            f"tasks={dict(final)} "
            f"executions={dict(execution_statuses)}; API calls={sum(calls.codes.values())} "
            f"by status={dict(sorted(calls.codes.items()))} errors={len(calls.errors)}"
        )
        print(figures)

        assert exits == [0, 0], [worker.output()[-3000:] for worker in workers]
        assert at_restart["COMPLETED"] < TASKS, "the restart must land mid-run"
        assert final["COMPLETED"] == TASKS, figures
        assert failed_tasks == 0, figures
        assert doubled == [], figures
        assert completed_by_one == TASKS, figures
        assert calls.codes[500] == 0, calls.errors
        assert calls.errors == [], calls.errors
    finally:
        for worker in workers:
            worker.close()
        web.terminate()
        web.wait(timeout=30)
        web_log.close()
