"""New connections go to the web worker that is least busy.

gunicorn's workers listen on one shared socket, and uvloop's server takes every connection
waiting there when it wakes. Two clients that connect together (two threads of one program, a
page and its first requests) so often both land on the first worker to wake, and a keep-alive
client stays where it landed: on the service's own server, two clients posting task batches had
both connections on one worker in 4 runs of 8, which then did all the work on one core while
the other core idled (4.7-5.5 s for the 10,000 tasks that took 3.0-3.9 s split).

Here a worker takes connections from the socket itself, one per wake-up. A worker with nothing
to do takes the next at once; a busy one first lets the others try, for a moment that grows
with how busy it is (``YIELD_SECONDS`` per unit, at most ``MOST_YIELDS`` units), then takes the
connection if it is still waiting. Busy means requests in progress, plus connections taken in
the last ``FRESH_SECONDS`` that have not sent their first request yet; a keep-alive connection
between requests does not count. The least busy worker so wins without the workers sharing any
state, as nginx's workers do with their accept mutex and its delay. A new connection waits a few
milliseconds only while every worker is busy; requests on open connections never wait.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import weakref
from typing import Any

from uvicorn import Server

from taskcenter.lib.connection_handover import http_protocol

logger = logging.getLogger(__name__)

# How long a busy worker lets the others try for a new connection, per request in progress or
# fresh connection (event loop timers count in milliseconds).
YIELD_SECONDS = 0.005
MOST_YIELDS = 3
# A new connection counts as work this long, until its first request: its client is sending one.
FRESH_SECONDS = 0.1
# accept() failed (out of descriptors or memory, most likely): try again after this long
# rather than at once, which would fail the same way in a busy loop.
ACCEPT_ERROR_PAUSE = 1.0


class BalancedServer(Server):
    """uvicorn's server, taking the connections of the sockets it is given itself (see the
    module). Without sockets (uvicorn binding its own) it is uvicorn's server unchanged; with
    ``yield_seconds`` 0 (a worker with no siblings) it takes each connection at once."""

    def __init__(self, config: Any, *, yield_seconds: float = YIELD_SECONDS) -> None:
        super().__init__(config)
        self.yield_seconds = yield_seconds
        self._listeners: list[_Listener] = []
        self._connecting: set[asyncio.Task] = set()
        # When each open connection was taken (forgotten with the connection).
        self._connected_at: weakref.WeakKeyDictionary[asyncio.BaseProtocol, float] = (
            weakref.WeakKeyDictionary()
        )

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        if not sockets:
            await super().startup(sockets)
            return
        await super().startup(sockets=[])  # the lifespan, and no server of uvloop's own
        loop = asyncio.get_running_loop()
        for sock in sockets:
            listener = _Listener(self, loop, sock)
            listener.listen()
            self._listeners.append(listener)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Before uvicorn closes the sockets: a reader must not outlive its descriptor.
        for listener in self._listeners:
            listener.close()
        self._listeners.clear()
        await super().shutdown(sockets)

    def load(self, now: float) -> int:
        """Requests in progress, and connections that are not idle yet: being set up, or
        taken in the last ``FRESH_SECONDS`` and still waiting for their first request. A
        keep-alive connection between requests is no work, nor is one that has closed."""
        busy = len(self._connecting)
        connected_at = self._connected_at
        for protocol in self.server_state.connections:
            cycle = getattr(protocol, "cycle", None)  # the request in progress, or the last
            if cycle is None:
                busy += now - connected_at.get(protocol, -FRESH_SECONDS) < FRESH_SECONDS
            elif not cycle.response_complete:
                busy += 1
        return busy

    def take(self, connection: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        connecting = loop.create_task(self._connect(connection, loop))
        self._connecting.add(connecting)
        connecting.add_done_callback(self._connecting.discard)

    async def _connect(self, connection: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        try:
            _, protocol = await loop.connect_accepted_socket(
                lambda: http_protocol(self), connection, ssl=self.config.ssl
            )
        except Exception:  # the client left during the TLS handshake, say: only this one
            logger.warning("A new connection could not be set up", exc_info=True)
            connection.close()
        else:
            self._connected_at[protocol] = loop.time()


class _Listener:
    """One listening socket of a worker: takes a connection when ready, after yielding."""

    def __init__(
        self, server: BalancedServer, loop: asyncio.AbstractEventLoop, sock: socket.socket
    ) -> None:
        self.server = server
        self.loop = loop
        self.sock = sock
        self.fd = sock.fileno()
        self.reading = False
        self.pause: asyncio.TimerHandle | None = None
        sock.setblocking(False)

    def listen(self) -> None:
        self.loop.add_reader(self.fd, self._ready)
        self.reading = True

    def close(self) -> None:
        if self.reading:
            self.loop.remove_reader(self.fd)
            self.reading = False
        if self.pause is not None:
            self.pause.cancel()
            self.pause = None

    def _ready(self) -> None:
        load = self.server.load(self.loop.time())
        if load and self.server.yield_seconds:
            self._wait(min(load, MOST_YIELDS) * self.server.yield_seconds, self._after_yield)
        else:
            self._accept()

    def _after_yield(self) -> None:
        self._resume()
        self._accept()  # the connection let pass, unless another worker took it meanwhile

    def _resume(self) -> None:
        self.pause = None
        self.listen()

    def _accept(self) -> None:
        try:
            connection, _ = self.sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # another worker took it, or its client gave up
        except OSError as exc:
            logger.error(
                "Cannot take a connection (%s); trying again in %s s", exc, ACCEPT_ERROR_PAUSE
            )
            self._wait(ACCEPT_ERROR_PAUSE, self._resume)
            return
        connection.setblocking(False)
        self.server.take(connection, self.loop)

    def _wait(self, seconds: float, then: Any) -> None:
        if self.reading:
            self.loop.remove_reader(self.fd)
            self.reading = False
        self.pause = self.loop.call_later(seconds, then)
