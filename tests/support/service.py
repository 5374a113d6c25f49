"""``run_service`` as ``make run`` starts it, in a subprocess on a free port, for the tests that
need the whole service: its children found and stopped through /proc."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys

from tests.support.processes import ROOT, test_database_url, wait_for


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_service(tmp_path, *args: str, **env: str) -> tuple[subprocess.Popen, int, object]:
    port = free_port()
    log = (tmp_path / "service.log").open("w+")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "taskcenter.test_settings",
        "DATABASE_URL": test_database_url(),
        "TASKCENTER_VAR_DIR": str(tmp_path / "var"),
        "STATIC_ROOT": str(tmp_path / "static"),
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "run_service", "--port", str(port), *args],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return process, port, log


def stop_service(process: subprocess.Popen) -> None:
    """Kill a service left running by a failed test, with its children's process groups.

    run_service starts gunicorn and the worker in process groups of their own, so killing the
    service alone would leave them serving (and loading the machine) after the test.
    """
    if process.poll() is None:
        for child in children_of(process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child, signal.SIGKILL)
        process.kill()
        process.wait(timeout=10)


def children_of(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as handle:
        return [int(child) for child in handle.read().split()]


def command_line(pid: int) -> bytes:
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        return handle.read()


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead but still has a pid until its parent reaps it.
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().split(") ")[-1][0] != "Z"


def wait_until_running(tmp_path) -> None:
    """Until ``start_service``'s service has printed its banner (its children are started)."""
    wait_for(
        lambda: b"Task Center is running" in (tmp_path / "service.log").read_bytes(),
        timeout=60,  # migrations and collectstatic first: slow on a loaded machine
    )


def child_running(process: subprocess.Popen, command: bytes) -> int:
    """The pid of the service's child whose command line contains ``command``."""
    return next(pid for pid in children_of(process.pid) if command in command_line(pid))
