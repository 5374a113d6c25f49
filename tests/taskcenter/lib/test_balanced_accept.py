"""New connections go to the web worker that is least busy (``taskcenter.lib.balanced_accept``):
on the web server as ``run_service`` starts it (gunicorn, uvicorn workers, here two), and the
measure of busy itself."""

from __future__ import annotations

import asyncio
import errno
import http.client
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from uvicorn import Config

from taskcenter.lib import balanced_accept
from taskcenter.lib.balanced_accept import FRESH_SECONDS, BalancedServer, _Listener
from taskcenter.models.tokens import ApiToken
from tests.support.asgi_server import asgi_server
from tests.support.connections import holders
from tests.support.processes import wait_for
from tests.support.sse import EventStream


@pytest.fixture
def two_workers(transactional_db, tmp_path) -> Iterator[str]:
    # A busy worker waits 50 ms for the idle one (5 ms in service): enough for it to wake even
    # while the machine is loaded, so that the outcome is the policy's, not the scheduler's.
    with asgi_server(tmp_path, workers=2, env={"WEB_ACCEPT_YIELD_MS": "50"}) as base:
        # The server answers once one worker is up; the other may still be starting.
        wait_for(lambda: len(served_together(base) - {None}) == 2, timeout=30)
        yield base


def connection(base: str) -> http.client.HTTPConnection:
    parts = urlsplit(base)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)


def ask(client: http.client.HTTPConnection) -> None:
    client.request("GET", "/healthz")
    response = client.getresponse()
    response.read()
    assert response.status == 200


def answered(base: str) -> http.client.HTTPConnection:
    """A keep-alive connection whose one request has been answered (so it is accepted)."""
    client = connection(base)
    ask(client)
    return client


def served_by(client: http.client.HTTPConnection, base: str) -> int | None:
    """The one process serving ``client`` (None: not accepted, or more than one)."""
    found = holders(client, urlsplit(base).port)
    return found.pop() if len(found) == 1 else None


def served_together(base: str) -> set[int | None]:
    """Two clients that connect at the same moment, then each ask; the processes serving them."""
    clients = [connection(base), connection(base)]
    for client in clients:
        client.connect()
    for client in clients:
        ask(client)
    pids = {served_by(client, base) for client in clients}
    for client in clients:
        client.close()
    return pids


@pytest.mark.slow
def test_two_clients_that_connect_together_are_served_by_both_workers(two_workers):
    # uvloop's own server took every waiting connection when it woke: both clients then
    # landed on one worker about every other time.
    for _ in range(10):
        pids = served_together(two_workers)
        assert None not in pids
        assert len(pids) == 2


@pytest.mark.slow
def test_a_worker_busy_with_a_request_leaves_new_connections_to_the_other(two_workers, user):
    _, key = ApiToken.objects.issue(user)
    stream = EventStream(
        two_workers, "/api/v1/events/stream", {}, headers={"Authorization": f"Bearer {key}"}
    )
    try:
        assert stream.status == 200  # a request in progress as long as the stream is open
        busy = served_by(stream.connection, two_workers)
        assert busy is not None
        clients = []
        for _ in range(5):
            clients.append(answered(two_workers))
            # Each stays open, idle between requests: no work, so the same worker takes the
            # next one too.
            assert served_by(clients[-1], two_workers) not in (busy, None)
        for client in clients:
            client.close()
    finally:
        stream.close()


class _Cycle:
    """What uvicorn's protocols keep of a connection's current (or last) request."""

    def __init__(self, *, response_complete: bool) -> None:
        self.response_complete = response_complete


class _Connection:
    def __init__(self, cycle: _Cycle | None = None) -> None:
        self.cycle = cycle


def test_busy_is_requests_in_progress_and_new_connections_yet_to_send_one():
    server = BalancedServer(Config(app=None))
    answering = _Connection(_Cycle(response_complete=False))
    idle = _Connection(_Cycle(response_complete=True))  # keep-alive, between requests
    new = _Connection()
    server.server_state.connections.update({answering, idle, new})
    server._connected_at[new] = 100.0
    server._connected_at[idle] = 100.0

    assert server.load(100.0) == 2  # answering, new
    assert server.load(100.0 + FRESH_SECONDS / 2) == 2
    assert server.load(100.0 + FRESH_SECONDS * 2) == 1  # new has been quiet too long: idle
    server.server_state.connections.discard(answering)  # closed
    assert server.load(100.0) == 1


class _Worker:
    """What a listener asks of its server: how busy it is, and to take a connection."""

    def __init__(self, load: int, yield_seconds: float) -> None:
        self.busy = load
        self.yield_seconds = yield_seconds
        self.taken: list[tuple[float, socket.socket]] = []

    def load(self, now: float) -> int:
        return self.busy

    def take(self, connection: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self.taken.append((loop.time(), connection))


async def _listen_and_connect(worker: _Worker, *, wait: float) -> float:
    """A listener of ``worker`` on a fresh socket, one client connecting: seconds until taken."""
    loop = asyncio.get_running_loop()
    server_socket = socket.create_server(("127.0.0.1", 0))
    listener = _Listener(worker, loop, server_socket)  # type: ignore[arg-type]
    listener.listen()
    client = socket.create_connection(server_socket.getsockname())
    connected = loop.time()
    try:
        await asyncio.sleep(wait)
        return worker.taken[0][0] - connected if worker.taken else float("inf")
    finally:
        listener.close()
        client.close()
        server_socket.close()
        for _, connection in worker.taken:
            connection.close()


def test_an_idle_worker_takes_a_new_connection_at_once():
    worker = _Worker(load=0, yield_seconds=0.2)
    assert asyncio.run(_listen_and_connect(worker, wait=0.1)) < 0.1


def test_a_busy_worker_takes_it_after_letting_the_others_try():
    worker = _Worker(load=1, yield_seconds=0.2)
    assert asyncio.run(_listen_and_connect(worker, wait=0.1)) == float("inf")  # still yielding
    worker = _Worker(load=1, yield_seconds=0.2)
    assert 0.15 < asyncio.run(_listen_and_connect(worker, wait=0.5)) < 0.5


def test_the_longer_a_worker_is_busy_the_longer_it_yields():
    worker = _Worker(load=2, yield_seconds=0.1)
    assert 0.15 < asyncio.run(_listen_and_connect(worker, wait=0.6)) < 0.6
    worker = _Worker(load=50, yield_seconds=0.1)  # at most MOST_YIELDS turns
    assert 0.25 < asyncio.run(_listen_and_connect(worker, wait=1.0)) < 1.0


def test_a_failing_accept_pauses_the_listener_instead_of_spinning(monkeypatch):
    monkeypatch.setattr(balanced_accept, "ACCEPT_ERROR_PAUSE", 0.2)
    worker = _Worker(load=0, yield_seconds=0)
    failures = []
    real_accept = socket.socket.accept

    def accept(sock: socket.socket):
        if not failures:
            failures.append(sock)
            raise OSError(errno.EMFILE, "Too many open files")
        return real_accept(sock)

    monkeypatch.setattr(socket.socket, "accept", accept)
    taken_after = asyncio.run(_listen_and_connect(worker, wait=0.6))
    assert len(failures) == 1  # one failure, then quiet until the pause was over
    assert 0.15 < taken_after < 0.6
