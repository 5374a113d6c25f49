"""``ensure_admin`` and ``run_service``: what ``make run`` relies on for a first login."""

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from io import StringIO

import pytest
import requests
from django.contrib.auth import get_user_model
from django.core.management import call_command

from tests.support.processes import ROOT, wait_for
from tests.support.service import (
    child_running,
    children_of,
    free_port,
    is_running,
    start_service,
    stop_service,
    wait_until_running,
)


@pytest.fixture
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    return tmp_path


def ensure_admin(*args: str) -> str:
    out = StringIO()
    call_command("ensure_admin", *args, stdout=out)
    return out.getvalue()


def stored_password(var_dir, username: str = "admin") -> str:
    return (var_dir / f"{username}_password").read_text().strip()


def test_ensure_admin_creates_superuser_with_random_password_readable_by_owner_only(var_dir, db):
    output = ensure_admin()

    admin = get_user_model().objects.get(username="admin")
    password = stored_password(var_dir)
    assert admin.is_superuser
    assert admin.is_staff
    assert admin.check_password(password)
    assert len(password) >= 20
    assert stat.S_IMODE((var_dir / "admin_password").stat().st_mode) == 0o600
    assert "http://127.0.0.1:8000/admin/" in output
    assert password in output


def test_ensure_admin_never_gives_two_installations_the_same_password(var_dir, db):
    ensure_admin("--username", "first")
    ensure_admin("--username", "second")

    assert stored_password(var_dir, "first") != stored_password(var_dir, "second")


def test_ensure_admin_second_run_prints_the_stored_password_and_keeps_it(var_dir, db):
    ensure_admin()
    password = stored_password(var_dir)

    output = ensure_admin()

    assert password in output
    assert stored_password(var_dir) == password
    assert get_user_model().objects.get(username="admin").check_password(password)


def test_ensure_admin_reset_replaces_the_password(var_dir, db):
    ensure_admin()
    old = stored_password(var_dir)

    output = ensure_admin("--reset")

    new = stored_password(var_dir)
    assert new != old
    assert new in output
    assert get_user_model().objects.get(username="admin").check_password(new)


def test_ensure_admin_without_password_file_points_to_changepassword(var_dir, db):
    get_user_model().objects.create_superuser("admin", "", "chosen-by-hand-123")

    output = ensure_admin()

    assert "manage.py changepassword admin" in output
    assert get_user_model().objects.get(username="admin").check_password("chosen-by-hand-123")
    assert not (var_dir / "admin_password").exists()


# --- run_service, as a real process tree ---------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_run_service_serves_admin_with_css_and_stops_both_children_on_sigint(
    transactional_db, tmp_path
):
    process, port, log = start_service(tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_running(tmp_path)
        children = children_of(process.pid)
        assert len(children) == 3  # gunicorn, the stream server and the worker

        # gunicorn's workers may still be loading Django when the banner is out: the first
        # answer waits for them (measured up to ~5 s beside a CPU hog), so no tight timeout.
        login = requests.get(f"{base}/admin/login/", timeout=60)
        css = requests.get(f"{base}/static/admin/css/base.css", timeout=60)
        assert login.status_code == 200
        assert css.status_code == 200
        assert "text/css" in css.headers["content-type"]

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        deadline = time.monotonic() + 5
        while any(is_running(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(is_running(pid) for pid in children)
    finally:
        stop_service(process)
        log.close()


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_run_service_stops_the_web_server_and_fails_when_the_worker_dies(
    transactional_db, tmp_path
):
    process, _port, log = start_service(tmp_path)
    try:
        wait_until_running(tmp_path)
        worker = child_running(process, b"run_worker")
        web = child_running(process, b"gunicorn")

        os.kill(worker, signal.SIGKILL)

        assert process.wait(timeout=30) != 0
        wait_for(lambda: not is_running(web), timeout=5)
        log.seek(0)
        assert "The worker process exited with code -9" in log.read()
    finally:
        stop_service(process)
        log.close()


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_run_service_with_sandbox_starts_the_platforms_stand_in_where_the_settings_point(
    transactional_db, tmp_path
):
    """make run's demo: publishing, scraping and generating need a platform to talk to."""
    sandbox_port = free_port()
    platforms = {
        f"{name}_BASE_URL": f"http://127.0.0.1:{sandbox_port}"
        for name in ("PUBLISHING", "SCRAPING", "GENERATION", "SYNC_SOURCE")
    }
    process, _port, log = start_service(tmp_path, "--with-sandbox", **platforms)
    try:
        wait_until_running(tmp_path)
        log.seek(0)
        assert f"sandbox: the sandbox platform on 127.0.0.1:{sandbox_port}" in log.read()
        children = children_of(process.pid)
        assert len(children) == 4  # the sandbox platform, gunicorn, the streams, the worker
        logins = requests.get(
            f"http://127.0.0.1:{sandbox_port}/publish/_logins",
            headers={"Authorization": "Bearer sandbox-token"},
            timeout=30,
        )
        assert logins.status_code == 200, logins.text

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        wait_for(lambda: not any(is_running(pid) for pid in children), timeout=5)
    finally:
        stop_service(process)
        log.close()


@pytest.mark.slow
def test_run_service_refuses_a_port_that_is_taken(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "run_service", "--port", str(port)],
            cwd=ROOT,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "taskcenter.test_settings",
                "TASKCENTER_VAR_DIR": str(tmp_path),
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode != 0
    assert f"Cannot listen on 127.0.0.1:{port}" in result.stderr


SIGNAL_RECORDER = """
import pathlib, signal, sys, time
def record(signum, frame):
    pathlib.Path(sys.argv[1]).write_text(signal.Signals(signum).name)
    sys.exit(0)
for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, record)
pathlib.Path(sys.argv[1] + ".ready").touch()
while True:
    time.sleep(0.05)
"""


def test_first_ctrl_c_asks_gunicorn_for_its_graceful_stop_and_the_worker_for_its_own(tmp_path):
    """gunicorn's SIGINT is a quick shutdown that can deadlock a gthread worker; SIGTERM is not.
    A sandbox platform gets SIGTERM too: started in the background of a script it ignores
    SIGINT, and ``make run`` waited 30 s for it before killing it."""
    from taskcenter.management.commands.run_service import Supervisor

    children = {
        name: subprocess.Popen([sys.executable, "-c", SIGNAL_RECORDER, str(tmp_path / name)])
        for name in ("web", "streams", "worker", "sandbox 8900")
    }
    try:
        wait_for(lambda: all((tmp_path / f"{name}.ready").exists() for name in children))
        supervisor = Supervisor(children)

        supervisor._on_signal(signal.SIGINT, None)

        assert supervisor.run() == 0
        assert (tmp_path / "web").read_text() == "SIGTERM"
        assert (tmp_path / "streams").read_text() == "SIGTERM"
        assert (tmp_path / "worker").read_text() == "SIGINT"
        assert (tmp_path / "sandbox 8900").read_text() == "SIGTERM"
    finally:
        for child in children.values():
            child.kill()
            child.wait()
