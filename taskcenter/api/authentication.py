"""How API clients prove who they are: a bearer token, or a browser's session.

Token authentication accepts ``Authorization: Bearer <key>`` as well as ``Token <key>``.

Keys are looked up by digest (``taskcenter.models.tokens``), and wrong keys are rate-limited per
client address (``FailedTokenThrottle``): past the limit every token from that address is refused
with 429, the right one too, so a guesser learns nothing from the answers.
"""

from __future__ import annotations

import copy
from typing import Any

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, QueryDict
from django.utils.datastructures import MultiValueDict
from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import (
    CSRFCheck,
    SessionAuthentication,
    TokenAuthentication,
    get_authorization_header,
)
from rest_framework.request import Request

from taskcenter.models.tokens import ApiToken

from .throttling import FailedTokenThrottle

KEYWORDS = (b"bearer", b"token")


def authenticated_user(request: Request) -> User:
    """The user of a request the view's permissions have let in.

    Every API view requires ``IsAuthenticated`` (the settings' default permission, or the
    view's own list), so by the time a handler runs ``request.user`` is never
    ``AnonymousUser``, though the stubs type it ``User | AnonymousUser``. This says so once,
    for handlers that pass the user on as an owner or actor.
    """
    user = request.user
    assert isinstance(user, User), "an anonymous request got past IsAuthenticated"
    return user


class BearerTokenAuthentication(TokenAuthentication):
    """DRF's token authentication on hashed keys, with both keywords. Listed first in the
    settings so that DRF answers unauthenticated requests 401 with ``WWW-Authenticate: Bearer``,
    not 403."""

    keyword = "Bearer"
    model = ApiToken

    def authenticate(self, request: Request) -> Any:
        auth = get_authorization_header(request).split()
        if not auth or auth[0].lower() not in KEYWORDS:
            return None
        if len(auth) == 1:
            # "Bearer " and nothing else is what a browser frontend sends when it has no token
            # (social-auto-upload's upload widget does): no credentials, so the session decides.
            return None
        if len(auth) != 2:
            raise exceptions.AuthenticationFailed(
                "Invalid token header: expected '<Bearer|Token> <key>'."
            )
        try:
            key = auth[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Invalid token header.") from None
        throttle = FailedTokenThrottle()
        if throttle.is_locked_out(request):
            raise exceptions.Throttled(
                throttle.wait(), "Too many invalid tokens from this address."
            )
        try:
            if "\x00" in key or len(key) > 64:
                raise exceptions.AuthenticationFailed("Invalid token.")
            return self.authenticate_credentials(key)
        except exceptions.AuthenticationFailed:
            throttle.record_failure(request)
            raise

    def authenticate_credentials(self, key: str) -> tuple[Any, ApiToken]:
        token = ApiToken.objects.for_key(key)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "taskcenter.api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer <key>` (or `Token <key>`); "
            "keys come from `manage.py issue_token <username>`.",
        }


class BrowserSessionAuthentication(SessionAuthentication):
    """Django's session, with CSRF proved by the token or by the browser's Fetch Metadata.

    DRF checks the CSRF token (the cookie and header names come from the settings) on every
    unsafe request of a session. A browser also says where a request comes from in
    ``Sec-Fetch-Site``, a header page scripts cannot set: ``same-origin`` means a page of this
    very origin sent it, which is what the token proves. Widgets that post outside the
    frontend's HTTP client (social-auto-upload's upload widget) send no token header but do
    send that. Any other value (``cross-site``, ``same-site`` from another port or subdomain)
    or none at all (an older browser) falls back to the token check.
    """

    def enforce_csrf(self, request: Request) -> None:
        if _from_this_origin(request):
            return
        super().enforce_csrf(request)


def _from_this_origin(request: Request) -> bool:
    return request.META.get("HTTP_SEC_FETCH_SITE") == "same-origin"


def _not_called(request: HttpRequest) -> HttpResponse:
    """The "next handler" and the "view" a middleware's methods take; the check calls neither."""
    raise AssertionError("the CSRF check does not call the view")


def enforce_csrf_as_unsafe(request: Request) -> None:
    """For a GET that changes data under a browser session: the CSRF check of a POST.

    Django and DRF check CSRF on unsafe methods only, so a link or an image on any site could
    reach a GET that deletes (social-auto-upload deletes with GET) or starts a login with the
    session cookie. Such a GET must come from a page of this origin: ``Sec-Fetch-Site:
    same-origin``, or the token in the header the settings name (a GET has no form to carry
    one) with the origin checks of a POST. Raises ``PermissionDenied`` (403) otherwise. A
    bearer token is not ambient: requests it authenticates are not checked.
    """
    if not isinstance(request.successful_authenticator, SessionAuthentication):
        return
    if _from_this_origin(request):
        return
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


class BrowserSessionScheme(SessionScheme):
    """The session in the OpenAPI document, as drf-spectacular describes DRF's own."""

    target_class = "taskcenter.api.authentication.BrowserSessionAuthentication"
