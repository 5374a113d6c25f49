"""Connections passed from one server process to another as they arrive, chosen by request line.

The web workers answer API requests; a thousand open event streams in the same processes made
those answers wait for the streams' writes (the event loop that parses and sends a request's
bytes also writes every stream's events). So a web worker that reads the first bytes of a
request for an event stream hands the whole connection to the stream server: the socket itself
(``SCM_RIGHTS`` over a Unix socket) with the bytes read from it so far. The stream server is a
uvicorn server of the same application without a port of its own; it takes the socket as if it
had accepted it and parses the same bytes, so the stream's authentication, filters, errors and
``Last-Event-ID`` are the same code either way. Nothing is written to the client in between.

The client sees one server on one port. When the stream server cannot take a connection (not
running, restarting, or its queue full) the web worker serves the stream itself, as it did
before; TLS connections are never passed (their session state lives in the worker).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import stat
import time
from pathlib import Path
from typing import Any

from uvicorn import Config, Server
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

logger = logging.getLogger(__name__)

# A stream request is a short GET; a first read larger than this is something else (served
# where it arrived).
MAX_FIRST_READ = 16 * 1024
# After a failed hand-over the worker serves streams itself for this long before it tries to
# reach the stream server again, so a stopped stream server costs one failed send a second.
RECONNECT_AFTER_SECONDS = 1.0


class HandOver:
    """A web worker's end: a ``SOCK_SEQPACKET`` connection to the stream server (one message per
    connection passed, never split), opened on first use, in the worker process (not in the
    gunicorn master that imported this before forking)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._channel: socket.socket | None = None
        self._retry_at = 0.0

    def send(self, connection: Any, received: bytes) -> bool:
        """Pass ``connection`` (anything with ``fileno()``) and the bytes already read from it;
        False, with nothing sent, when the stream server cannot take it now."""
        channel = self._connected()
        if channel is None:
            return False
        try:
            socket.send_fds(channel, [received], [connection.fileno()])
        except BlockingIOError:
            return False  # the stream server is behind: this one stays here
        except OSError as exc:
            logger.warning("Stream server %s went away (%s); streams served here", self.path, exc)
            self._drop()
            return False
        return True

    def _connected(self) -> socket.socket | None:
        if self._channel is not None:
            return self._channel
        if time.monotonic() < self._retry_at:
            return None
        channel = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        channel.setblocking(False)
        try:
            channel.connect(self.path)
        except OSError:
            channel.close()
            self._retry_at = time.monotonic() + RECONNECT_AFTER_SECONDS
            return None
        self._channel = channel
        return channel

    def _drop(self) -> None:
        if self._channel is not None:
            self._channel.close()
        self._channel = None
        self._retry_at = time.monotonic() + RECONNECT_AFTER_SECONDS


def stream_routing_protocol(hand_over: HandOver, request_line: re.Pattern[bytes]) -> type:
    """uvicorn's httptools protocol, which passes a connection to ``hand_over`` when a request
    that begins it, or begins after the previous response ended, matches ``request_line``."""

    class StreamRoutingProtocol(HttpToolsProtocol):
        _in_request = False

        def on_message_begin(self) -> None:
            self._in_request = True
            super().on_message_begin()

        def on_message_complete(self) -> None:
            self._in_request = False
            super().on_message_complete()

        def data_received(self, data: bytes) -> None:
            if self._between_requests() and request_line.match(data) and self._pass_on(data):
                return
            super().data_received(data)

        def _between_requests(self) -> bool:
            # Only then do these bytes start a request (a pipelined or half-read one stays).
            idle = self.cycle is None or self.cycle.response_complete
            return idle and not self._in_request and not self.pipeline

        def _pass_on(self, data: bytes) -> bool:
            if self.scheme != "http" or len(data) > MAX_FIRST_READ:
                return False
            connection = self.transport.get_extra_info("socket")
            if connection is None or not hand_over.send(connection, data):
                return False
            # The stream server holds the connection now. Closing this process's descriptor
            # sends nothing: the socket lives on while another process has it open.
            self._unset_keepalive_if_required()
            self.transport.abort()
            return True

    return StreamRoutingProtocol


class HandedOverServer(Server):
    """A uvicorn server without a port of its own: it serves the connections that web workers
    pass to it on the Unix socket at ``path`` (made here, readable by this user only)."""

    def __init__(self, config: Config, path: str) -> None:
        super().__init__(config)
        self.path = path
        self._listener: socket.socket | None = None
        self._workers: set[socket.socket] = set()
        self._arriving: set[asyncio.Task[None]] = set()  # held, or the loop may lose them

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])
        if not self.started:
            return
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                os.unlink(self.path)  # an earlier run's, left by a kill
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        previous_umask = os.umask(0o177)
        try:
            listener.bind(self.path)
        finally:
            os.umask(previous_umask)
        listener.listen(64)
        listener.setblocking(False)
        self._listener = listener
        asyncio.get_running_loop().add_reader(listener.fileno(), self._accept_worker)
        logger.info("Serving the connections handed over on %s", self.path)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # First stop taking connections (the workers serve new streams themselves), then let
        # uvicorn end the open ones as it ends its own.
        loop = asyncio.get_running_loop()
        for channel in [*self._workers, *([self._listener] if self._listener else [])]:
            loop.remove_reader(channel.fileno())
            channel.close()
        self._workers.clear()
        if self._listener is not None:
            self._listener = None
            with contextlib.suppress(FileNotFoundError):
                Path(self.path).unlink()
        await super().shutdown(sockets)

    def _accept_worker(self) -> None:
        assert self._listener is not None
        try:
            channel, _ = self._listener.accept()
        except BlockingIOError:
            return
        channel.setblocking(False)
        self._workers.add(channel)
        asyncio.get_running_loop().add_reader(channel.fileno(), self._receive, channel)

    def _receive(self, channel: socket.socket) -> None:
        try:
            data, descriptors, _flags, _address = socket.recv_fds(channel, MAX_FIRST_READ, 1)
        except BlockingIOError:
            return
        except OSError:
            data, descriptors = b"", []
        if not data and not descriptors:  # the worker stopped
            asyncio.get_running_loop().remove_reader(channel.fileno())
            self._workers.discard(channel)
            channel.close()
            return
        for descriptor in descriptors:
            arriving = asyncio.ensure_future(self._take(socket.socket(fileno=descriptor), data))
            self._arriving.add(arriving)
            arriving.add_done_callback(self._arriving.discard)

    async def _take(self, connection: socket.socket, received: bytes) -> None:
        loop = asyncio.get_running_loop()
        if self.should_exit:
            connection.close()  # shutting down: the client reconnects to the next one
            return

        try:
            _transport, served = await loop.connect_accepted_socket(
                lambda: http_protocol(self), sock=connection
            )
        except OSError:
            connection.close()  # the client left while it was being passed
            return
        served.data_received(received)


def http_protocol(server: Server) -> asyncio.Protocol:
    """The protocol uvicorn's ``server`` makes for a connection it accepted (``Server.startup``),
    for a connection taken some other way."""
    make: Any = server.config.http_protocol_class  # typed as asyncio's Protocol class
    return make(
        config=server.config, server_state=server.server_state, app_state=server.lifespan.state
    )
