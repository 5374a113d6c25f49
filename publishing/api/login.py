"""``GET /login?type=&id=``: social-auto-upload's account login stream (Server-Sent Events).

The front end opens it with ``new EventSource(url)``, which sends no Authorization header: the
Django session authenticates it when the front end is served from Task Center's own origin, and
a bearer token does for other clients. Refusals (anonymous 401, a bad ``type`` or ``id`` 400) are
the API's ``{code, msg, data}`` envelope, not a stream, whatever ``Accept`` says.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.http import HttpResponseBase
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request

from publishing import login
from publishing.api.csrf import UnsafeGetMixin
from publishing.api.envelope import EnvelopeSerializer, SocialAutoUploadView
from publishing.platforms import PlatformType
from taskcenter.api.authentication import authenticated_user

# social-auto-upload's login types: its four platforms with a QR-code login.
LOGIN_TYPES = [
    PlatformType.XIAOHONGSHU,
    PlatformType.TENCENT,
    PlatformType.DOUYIN,
    PlatformType.KUAISHOU,
]


class LoginQuery(serializers.Serializer):
    type = serializers.ChoiceField(
        choices=[(int(code), str(code.label)) for code in LOGIN_TYPES],
        help_text="1 xiaohongshu, 2 tencent channels, 3 douyin, 4 kuaishou.",
    )
    id = serializers.CharField(
        max_length=100,
        help_text="The account's name (its userName); an existing one logs in again.",
    )


# One Server-Sent Event of the stream, as an EventSource hands it to the page.
STREAM_EVENT = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "enum": ["message"]},
        "data": {"type": "string", "description": "A data URL of the QR code, or 200, or 500."},
    },
    "required": ["data"],
}


class ErrorsAsJson(BaseContentNegotiation):
    """Errors are answered in the JSON envelope even to ``Accept: text/event-stream``: the
    stream itself is a response of its own, which DRF does not render."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, str(renderer.media_type)


class LoginStreamView(UnsafeGetMixin, SocialAutoUploadView):
    """A GET that adds an account: another site's page must not start one with the session
    cookie (someone might scan its code without knowing whose account it adds)."""

    renderer_classes = [JSONRenderer]
    content_negotiation_class = ErrorsAsJson

    @extend_schema(
        parameters=[LoginQuery],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                STREAM_EVENT,
                description="Messages: the QR code as `data:image/png;base64,...`, then `200` "
                "(logged in, credentials stored) or `500`; `:` comment lines between.",
            ),
            400: EnvelopeSerializer,
            401: EnvelopeSerializer,
            403: EnvelopeSerializer,
        },
    )
    def get(self, request: Request) -> HttpResponseBase:
        """Log an account in on its platform by QR code, as a Server-Sent Events stream."""
        query = LoginQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        owner = authenticated_user(request)
        target = login.login_target(
            owner.pk, query.validated_data["type"], query.validated_data["id"]
        )
        return login.event_stream(login.login_events(target))


# Included at the site root by publishing.api.urls, beside the other social-auto-upload paths.
urlpatterns = [path("login", LoginStreamView.as_view(), name="publishing-login")]
