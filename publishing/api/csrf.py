"""GET requests that delete, under a browser session: checked for CSRF as if they were POSTs.

social-auto-upload's front end deletes with GET (``/deleteFile?id=``, ``/deleteAccount?id=``).
Django and DRF check CSRF only on unsafe methods, so under a session a link or an image on any
site could delete through these URLs. The views that delete on GET take ``UnsafeGetMixin``: a
GET authenticated by the session must carry the CSRF token in the header Django's settings name
(``CSRF_HEADER_NAME``; the front end's axios sends it on same-origin requests) and pass the
origin checks, exactly as a POST would. A bearer token is not ambient, so it needs no token.
HEAD, which Django would otherwise answer with the GET handler, is not allowed on them.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from django.http import HttpRequest, HttpResponse, QueryDict
from django.utils.datastructures import MultiValueDict
from rest_framework import exceptions
from rest_framework.authentication import CSRFCheck, SessionAuthentication
from rest_framework.request import Request


def _not_called(request: HttpRequest) -> HttpResponse:
    """The "next handler" and the "view" a middleware's methods take; the check calls neither."""
    raise AssertionError("the CSRF check does not call the view")


def enforce_csrf_as_unsafe(request: Request) -> None:
    """Run Django's CSRF check on ``request`` as on a POST; 403 (``PermissionDenied``) if it
    fails. The token is read from the header only: a GET has no form to carry one."""
    as_post = copy.copy(request._request)
    as_post.method = "POST"
    as_post._post = QueryDict()  # type: ignore[attr-defined]  # the form a GET does not have
    as_post._files = MultiValueDict()  # type: ignore[attr-defined]
    as_post.csrf_processing_done = False  # type: ignore[attr-defined]
    check = CSRFCheck(_not_called)
    check.process_request(as_post)  # reads the CSRF cookie, as the middleware does
    reason = check.process_view(as_post, _not_called, (), {})
    if reason:
        raise exceptions.PermissionDenied(f"CSRF Failed: {reason}")


class UnsafeGetMixin:
    """For an ``APIView`` whose GET changes data: session-authenticated GETs pass the CSRF check
    of a POST; HEAD is refused (405)."""

    http_method_names: Sequence[str] = ["get", "post", "options"]

    def perform_authentication(self, request: Request) -> None:
        super().perform_authentication(request)  # type: ignore[misc]
        if request.method == "GET" and isinstance(
            request.successful_authenticator, SessionAuthentication
        ):
            enforce_csrf_as_unsafe(request)
