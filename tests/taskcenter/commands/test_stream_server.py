"""The stream server: under ``run_service`` the task event streams are served by a process of
their own, on the web server's port, and the API by gunicorn's workers.

A web worker passes a connection whose request is a stream to the stream server as it arrives
(``taskcenter.lib.connection_handover``). Which process serves a connection is read from
/proc: the one that holds the server's end of the client's socket.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from taskcenter import lifecycle
from taskcenter.models.tokens import ApiToken
from taskcenter.web_worker import STREAM_SOCKET_ENV
from tests.support.connections import holders
from tests.support.processes import ROOT, test_database_url, wait_for
from tests.support.service import (
    child_running,
    children_of,
    command_line,
    free_port,
    start_service,
    stop_service,
    wait_until_running,
)
from tests.support.sse import EventStream

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).ok
    except requests.ConnectionError:
        return False  # not listening yet


def events_of(stream: EventStream):
    return (json.loads(data) for data in stream.messages())


def test_streams_are_served_by_the_stream_server_and_the_api_by_the_web_workers(
    transactional_db, tmp_path, user, other_user
):
    _, key = ApiToken.objects.issue(user)
    auth = {"Authorization": f"Bearer {key}"}
    others = lifecycle.create_task(owner=other_user, task_type="demo.noop")
    process, port, log = start_service(tmp_path, "--no-worker")
    base = f"http://127.0.0.1:{port}"
    streams_opened: list[EventStream] = []
    try:
        wait_until_running(tmp_path)
        streams = child_running(process, b"taskcenter.stream_server")
        gunicorn = child_running(process, b"gunicorn")
        # gunicorn's workers may still be loading Django: the first answer may take seconds.
        assert requests.get(f"{base}/api/v1/tasks", headers=auth, timeout=60).status_code == 200
        web = [gunicorn, *children_of(gunicorn)]
        arguments = command_line(streams).split(b"\0")
        socket_path = Path(arguments[arguments.index(b"--socket") + 1].decode())
        wait_for(socket_path.exists, timeout=60)  # bound once its Django is loaded
        # It gives way to the API's processes when they want the cores.
        niceness = os.getpriority(os.PRIO_PROCESS, streams)
        assert niceness == os.getpriority(os.PRIO_PROCESS, gunicorn) + 10

        stream = EventStream(base, "/api/v1/events/stream", {}, headers=auth)
        streams_opened.append(stream)
        assert stream.status == 200
        assert stream.header("Content-Type") == "text/event-stream"
        wait_for(lambda: holders(stream.connection, port, [streams, *web]) == {streams})
        task = lifecycle.create_task(owner=user, task_type="demo.noop")
        created = next(events_of(stream))
        assert (created["task_id"], created["verb"]) == (task.pk, "created")

        # Refusals are the view's own, in its envelope, whichever process answers.
        bad = EventStream(base, "/api/v1/events/stream", {"status": "BOGUS"}, headers=auth)
        streams_opened.append(bad)
        assert bad.status == 400
        assert json.loads(bad.body())["detail"][0]["loc"] == ["status"]
        hidden = EventStream(base, f"/api/v1/tasks/{others.pk}/stream", {}, headers=auth)
        streams_opened.append(hidden)
        assert hidden.status == 404

        # A browser asks for the page's data and then the stream on one kept-alive connection:
        # the API request is a web worker's, the stream that follows goes to the stream server.
        browser = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        browser.request("GET", f"/api/v1/tasks/{task.pk}", headers=auth)
        detail = browser.getresponse()
        assert detail.status == 200
        assert json.loads(detail.read())["id"] == task.pk
        assert holders(browser, port, [streams, *web]) <= set(web)
        browser.request("GET", f"/api/v1/tasks/{task.pk}/stream?last_event_id=0", headers=auth)
        replay = browser.getresponse()
        assert replay.status == 200
        wait_for(lambda: holders(browser, port, [streams, *web]) == {streams})
        replayed = b""
        while b'"verb":"created"' not in replayed:
            replayed += replay.read1(65536) or pytest.fail(f"the stream ended: {replayed!r}")
        browser.close()

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert not socket_path.parent.exists()  # this run's socket directory is gone with it
    finally:
        for opened in streams_opened:
            opened.close()
        stop_service(process)
        log.close()


def test_a_web_worker_serves_the_streams_itself_when_the_stream_server_is_not_there(
    transactional_db, tmp_path, user
):
    _, key = ApiToken.objects.issue(user)
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "taskcenter.test_settings",
        "DATABASE_URL": test_database_url(),
        "TASKCENTER_VAR_DIR": str(tmp_path / "var"),
        STREAM_SOCKET_ENV: str(tmp_path / "nobody-listens-here"),
    }
    command = [sys.executable, "-m", "gunicorn", "taskcenter.asgi:application"]
    command += ["--worker-class", "taskcenter.web_worker.WebWorker", "--workers", "1"]
    command += ["--bind", f"127.0.0.1:{port}", "--no-control-socket"]
    log = (tmp_path / "gunicorn.log").open("w+")
    gunicorn = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    stream = None
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: answers(f"{base}/healthz"), timeout=60, every=0.2)
        stream = EventStream(
            base, "/api/v1/events/stream", {}, headers={"Authorization": f"Bearer {key}"}
        )
        assert stream.status == 200
        web = [gunicorn.pid, *children_of(gunicorn.pid)]
        assert holders(stream.connection, port, web) == set(children_of(gunicorn.pid))
        task = lifecycle.create_task(owner=user, task_type="demo.noop")
        created = next(events_of(stream))
        assert (created["task_id"], created["verb"]) == (task.pk, "created")
    finally:
        if stream is not None:
            stream.close()
        gunicorn.send_signal(signal.SIGTERM)
        try:
            gunicorn.wait(timeout=30)
        finally:
            if gunicorn.poll() is None:
                gunicorn.kill()
            log.close()
