"""The web server as ``run_service`` starts it (gunicorn, uvicorn workers, ``taskcenter.asgi``),
on the test database, for tests that need streams served without holding a thread."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import requests

from tests.support.processes import test_database_url, wait_for
from tests.support.throwaway_postgres import free_port

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def asgi_server(
    tmp_path: Path,
    *,
    env: dict[str, str] | None = None,
    static: bool = False,
    workers: int = 1,
) -> Iterator[str]:
    """Start ``workers`` uvicorn workers under gunicorn; yields the base URL, stops it at the end.

    ``static``: collect the static files first (into ``tmp_path``) so whitenoise serves them,
    as ``run_service`` does before it starts the server.
    """
    port = free_port()
    log = (tmp_path / "web.log").open("w+")
    full_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "taskcenter.test_settings",
        "DATABASE_URL": test_database_url(),
        **(env or {}),
    }
    if static:
        full_env["STATIC_ROOT"] = str(tmp_path / "static")
        subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "collectstatic", "--noinput", "-v0"],
            cwd=ROOT,
            env=full_env,
            check=True,
        )
    command = [sys.executable, "-m", "gunicorn", "taskcenter.asgi:application"]
    command += ["--worker-class", "taskcenter.web_worker.WebWorker", "--workers", str(workers)]
    with gunicorn_server(command, full_env, log, port, up_path="/api/v1/tasks") as base:
        yield base


@contextlib.contextmanager
def gunicorn_server(
    command: list[str], env: dict[str, str], log: IO[str], port: int, *, up_path: str
) -> Iterator[str]:
    """Run ``command`` (a gunicorn serving on ``port``) until the block ends; yields its base
    URL once ``up_path`` answers 401 (Django loaded, asking who calls). Closes ``log``."""
    command = [*command, "--bind", f"127.0.0.1:{port}", "--no-control-socket"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert process.poll() is None, log.seek(0) or log.read()
        try:
            return requests.get(f"{base}{up_path}", timeout=5).status_code == 401
        except requests.RequestException:  # not listening yet, or still loading Django
            return False

    try:
        wait_for(up, timeout=60, every=0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
