"""pytest-django's live server, without a stall on every request of a kept-alive connection.

Django's test server sends a response's headers and its body in two writes. With Nagle's
algorithm on its socket the body waits until the client has acknowledged the headers, and a
client that keeps its connection open (requests' session in schemathesis, a browser) holds
that acknowledgement back for its delayed-ACK timer: every request after a connection's first
took about 40 ms longer than its work (55 ms against 13 ms for the same request on a fresh
connection), which made the schema test spend most of its five minutes waiting.
"""

from __future__ import annotations

import socket

from django.core.servers.basehttp import ThreadedWSGIServer
from django.test.testcases import LiveServerThread


class NoDelayWSGIServer(ThreadedWSGIServer):
    """Sends each write as soon as it is made (``TCP_NODELAY``), as production servers do."""

    def get_request(self) -> tuple[socket.socket, object]:
        connection, address = super().get_request()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, address


def serve_without_nagle() -> None:
    # pytest-django builds Django's LiveServerThread itself and offers no way to pass a
    # server class, so the thread's class attribute, meant for overriding, is set here.
    LiveServerThread.server_class = NoDelayWSGIServer
