"""gunicorn's worker for the web server: uvicorn serving ``taskcenter.asgi``.

ASGI, so that an open event stream (``/api/v1/events/stream``, the admin's live updates) holds
no thread: gthread's pool would be used up by a handful of open admin pages.
"""

from __future__ import annotations

from typing import Any

from uvicorn_worker import UvicornWorker  # type: ignore[import-untyped]

# On a stop, requests in flight get this long; event streams never end by themselves, so they
# are cut here (their pages reconnect to the next server and resume by Last-Event-ID).
GRACEFUL_SHUTDOWN_SECONDS = 5


class WebWorker(UvicornWorker):
    CONFIG_KWARGS: dict[str, Any] = {
        **UvicornWorker.CONFIG_KWARGS,
        # Django has no lifespan handler; "off" spares a warning at every start.
        "lifespan": "off",
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
    }
