"""How API clients prove who they are: a bearer token, or a browser's session.

Token authentication accepts ``Authorization: Bearer <key>`` as well as ``Token <key>``.

Keys are looked up by digest (``taskcenter.models.tokens``), and wrong keys are rate-limited per
client address (``FailedTokenThrottle``): past the limit every token from that address is refused
with 429, the right one too, so a guesser learns nothing from the answers.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import (
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
        if request.META.get("HTTP_SEC_FETCH_SITE") == "same-origin":
            return
        super().enforce_csrf(request)


class BrowserSessionScheme(SessionScheme):
    """The session in the OpenAPI document, as drf-spectacular describes DRF's own."""

    target_class = "taskcenter.api.authentication.BrowserSessionAuthentication"
