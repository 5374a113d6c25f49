"""Request bodies: oversized ones refused in the URL's envelope, unread ones drained; a database
outage answered 503 where DRF's exception handler does not reach."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpRequest, HttpResponse, JsonResponse

from taskcenter.lib.db_outage import (
    DATABASE_UNAVAILABLE,
    RETRY_AFTER_SECONDS,
    drop_broken_connection,
)

from .dialect_errors import error_response

API_PREFIX = "/api/"
DRAIN_CHUNK = 256 * 1024

logger = logging.getLogger(__name__)


def _answer(request: HttpRequest, status: int, message: str) -> HttpResponse:
    return error_response(request, status, message) or JsonResponse(
        {"detail": message}, status=status
    )


def _too_big(request: HttpRequest) -> HttpResponse:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return _answer(request, 413, f"Request body is larger than the limit of {limit} bytes.")


class RequestSizeLimitMiddleware:
    """DRF's parsers read the request stream directly, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE
    check (done only in ``request.body``) never fires for JSON; check Content-Length here.

    The publishing paths at the site root take video uploads far above this limit and check
    their own (``publishing.api.envelope.SocialAutoUploadView``).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if request.path.startswith(API_PREFIX) and limit is not None:
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return _answer(request, 400, "Content-Length: not a number of bytes.")
            if length > limit:
                return _too_big(request)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, RequestDataTooBig):
            return error_response(request, 413, str(exception) or "Request body is too large.")
        return None


def drain(stream: LimitedStream, max_bytes: int) -> int:
    """Read and discard what is left of a request body, up to ``max_bytes``; bytes read."""
    drained = 0
    try:
        while drained < max_bytes:
            chunk = stream.read(min(DRAIN_CHUNK, max_bytes - drained))
            if not chunk:
                break
            drained += len(chunk)
    except Exception:  # the client went away (each server raises its own error): nothing to do
        logger.debug("Stopped draining a request body", exc_info=True)
    return drained


class DrainUnreadBodyMiddleware:
    """Read the rest of a body the view refused unread, once the answer has been sent.

    A 413 (or a 401 before an upload) is decided from the headers while the client is still
    sending. gunicorn drains only 64 KiB before it closes the socket, and closing a socket with
    unread data sends a reset, which discards the answer in the client's receive buffer: the
    client sees "connection reset" instead of the JSON error. Draining after the response (as
    nginx's lingering close does) lets the client read it. A body already consumed costs nothing.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Taken before the view: request.body replaces _stream with an in-memory copy.
        stream = getattr(request, "_stream", None)
        response = self.get_response(request)
        if isinstance(stream, LimitedStream):
            limit = settings.REQUEST_DRAIN_MAX_BYTES
            # The WSGI server calls response.close() after it has written the response; Django
            # runs these closers there (it uses them itself for file responses).
            # The stubs leave out this private list of HttpResponseBase.
            response._resource_closers.append(lambda: drain(stream, limit))  # type: ignore[attr-defined]
        return response


class DatabaseUnavailableMiddleware:
    """A view that hits a restarting database answers 503 with Retry-After, not a 500 page.

    DRF views map the error in their exception handler (``api.exceptions``); this covers the
    admin and plain Django views: the URL's envelope where it has one, plain text elsewhere.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DATABASE_UNAVAILABLE):
            return None
        drop_broken_connection()
        message = "The database is unavailable; try again shortly."
        response = error_response(request, 503, message) or HttpResponse(
            message, status=503, content_type="text/plain; charset=utf-8"
        )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
