"""Errors answered outside a view (unknown URL, body too large, crash) in the URL's own envelope.

Inside a view each dialect shapes its errors itself; before a view runs (404, a 413 from the
size limit) or after it crashed (500), only the path says which client is asking. The setting
``ERROR_ENVELOPES`` maps URL prefixes to a function ``(status, message) -> dict`` (a dotted
path, as DRF's ``EXCEPTION_HANDLER``), so the core never imports the dialect apps; the longest
matching prefix wins, and a prefix mapped to ``None`` keeps Django's HTML pages (the admin).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils.module_loading import import_string

ErrorBody = Callable[[int, str], dict[str, Any]]


def detail_body(status: int, message: str) -> dict[str, Any]:
    """The canonical API's error: ``{"detail": ...}``."""
    return {"detail": message}


@cache
def _builder(dotted_path: str) -> ErrorBody:
    return import_string(dotted_path)


def envelope_for(path: str) -> ErrorBody | None:
    """The error body builder for ``path``, or ``None`` where people get HTML pages."""
    prefixes = settings.ERROR_ENVELOPES
    matches = [prefix for prefix in prefixes if path.startswith(prefix)]
    if not matches:
        return None
    dotted = prefixes[max(matches, key=len)]
    return _builder(dotted) if dotted else None


def error_response(request: HttpRequest, status: int, message: str) -> JsonResponse | None:
    """``message`` as a ``status`` response in the envelope of the request's URL, if it has one."""
    build = envelope_for(request.path)
    if build is None:
        return None
    return JsonResponse(
        build(status, message), status=status, json_dumps_params={"ensure_ascii": False}
    )
