"""GET requests that change data, under a browser session: checked for CSRF as POSTs are.

social-auto-upload's front end deletes with GET (``/deleteFile?id=``, ``/deleteAccount?id=``)
and adds accounts with a GET event stream (``/login``). The views that do take
``UnsafeGetMixin``; the check itself is the core's (``enforce_csrf_as_unsafe``). HEAD, which
Django would otherwise answer with the GET handler, is not allowed on them.
"""

from __future__ import annotations

from collections.abc import Sequence

from rest_framework.request import Request

from taskcenter.api.authentication import enforce_csrf_as_unsafe


class UnsafeGetMixin:
    """For an ``APIView`` whose GET changes data: session-authenticated GETs pass the CSRF check
    of a POST; HEAD is refused (405)."""

    http_method_names: Sequence[str] = ["get", "post", "options"]

    def perform_authentication(self, request: Request) -> None:
        super().perform_authentication(request)  # type: ignore[misc]
        if request.method == "GET":
            enforce_csrf_as_unsafe(request)
