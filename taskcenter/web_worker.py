"""gunicorn's worker for the web server: uvicorn serving ``taskcenter.asgi``.

ASGI, so that an open event stream (``/api/v1/events/stream``, the admin's live updates) holds
no thread: gthread's pool would be used up by a handful of open admin pages. Under
``run_service`` the streams are not served here at all: each worker passes a connection whose
request is a task event stream to the stream server (``taskcenter.stream_server``) as it
arrives, so the API's answers do not wait behind the streams' writes
(``taskcenter.lib.connection_handover``).
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from gunicorn.arbiter import Arbiter  # type: ignore[import-untyped]
from uvicorn_worker import UvicornWorker  # type: ignore[import-untyped]

from taskcenter.lib.balanced_accept import YIELD_SECONDS, BalancedServer
from taskcenter.lib.connection_handover import HandOver, stream_routing_protocol

# On a stop, requests in flight get this long; event streams never end by themselves, so they
# are cut here (their pages reconnect to the next server and resume by Last-Event-ID).
GRACEFUL_SHUTDOWN_SECONDS = 5

# Where the stream server takes connections (set by run_service for both sides); without it
# the workers serve the streams themselves.
STREAM_SOCKET_ENV = "TASKCENTER_STREAM_SOCKET"
# The request lines of the task event streams (taskcenter.api.urls): all events, one task's.
STREAM_REQUEST_LINE = re.compile(rb"GET /api/v1/(?:events|tasks/[0-9]+)/stream[? ]")

_stream_socket = os.environ.get(STREAM_SOCKET_ENV)
# How long a busy worker lets an idle one take a new connection, per unit of work
# (taskcenter.lib.balanced_accept); docs/configuration.md.
_accept_yield = float(os.environ.get("WEB_ACCEPT_YIELD_MS", YIELD_SECONDS * 1000)) / 1000


class WebWorker(UvicornWorker):
    CONFIG_KWARGS: dict[str, Any] = {
        **UvicornWorker.CONFIG_KWARGS,
        # Django has no lifespan handler; "off" spares a warning at every start.
        "lifespan": "off",
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
        **(
            {"http": stream_routing_protocol(HandOver(_stream_socket), STREAM_REQUEST_LINE)}
            if _stream_socket
            else {}
        ),
    }

    async def _serve(self) -> None:
        # uvicorn_worker's own, with a server that leaves each new connection to the least
        # busy worker (taskcenter.lib.balanced_accept).
        self.config.app = self.wsgi
        alone = self.cfg.workers == 1
        server = BalancedServer(config=self.config, yield_seconds=0 if alone else _accept_yield)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
