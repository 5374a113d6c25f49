"""Real processes on the test database: a ``run_worker`` process, polling, the database URL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent.parent


def wait_for(predicate: Callable[[], object], *, timeout: float = 15.0, every: float = 0.05):
    """Poll ``predicate`` until it returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"Timed out after {timeout}s waiting for {predicate}")
        time.sleep(every)


def test_database_url() -> str:
    """A DATABASE_URL that points a subprocess at the database this test is using."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    user = quote(settings.get("USER") or "", safe="")
    password = quote(settings.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings.get("HOST") or "localhost"
    port = f":{settings['PORT']}" if settings.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{settings['NAME']}"


test_database_url.__test__ = False  # not a test, despite the name


class WorkerProcess:
    """A real ``manage.py run_worker`` process on the test database."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.log_path = Path(tempfile.gettempdir()) / f"worker-{os.getpid()}-{id(self)}.log"
        self._log = self.log_path.open("w")
        full_env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "taskcenter.test_settings",
            "DATABASE_URL": test_database_url(),
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "INFO",  # wait_until_polling reads the "started" line
            **(env or {}),
        }
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "run_worker", *args],
            cwd=ROOT,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a stopped process cannot die of SIGTERM
            self.process.kill()
        self.process.wait(timeout=10)

    def terminate(self, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(timeout=timeout)

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def wait_until_polling(self, timeout: float = 60.0) -> None:
        """Return once the worker's loop runs (it logs "started" just before its first claim).

        Booting Django takes a second or two, and seconds more on a loaded machine, so two
        workers started together come up far apart: a test about several workers sharing work
        must wait for all of them before it queues any, or the first one up does it all.
        """
        wait_for(
            lambda: " started: concurrency=" in self.output() or self.process.poll() is not None,
            timeout=timeout,
        )
        assert self.process.poll() is None, f"worker exited:\n{self.output()}"

    def close(self) -> None:
        self.kill()
        self._log.close()
        self.log_path.unlink(missing_ok=True)
