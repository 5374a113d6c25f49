"""The operator's language for the pages people read; English, always, for the dialect APIs.

Django's ``LocaleMiddleware`` would also translate the messages DRF and Django put in API error
bodies ("Not found.", "Authentication credentials were not provided."), which the dialects'
clients parse. So the language is negotiated (session or cookie from the switch, then the
browser's Accept-Language) only for the admin, the language switch, and requests that ask for
HTML: the browsable API, its login page and the API docs. Every other request keeps the default
language and gets no Content-Language or Vary header, so its bytes do not depend on
Accept-Language.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.middleware.locale import LocaleMiddleware
from django.utils import translation

OPERATOR_PREFIXES = ("/admin/", "/i18n/")


def wants_operator_language(request: HttpRequest) -> bool:
    """The admin and the switch, and any page a browser asks for as HTML."""
    if request.path_info.startswith(OPERATOR_PREFIXES):
        return True
    return "text/html" in request.headers.get("Accept", "")


class OperatorLocaleMiddleware(LocaleMiddleware):
    """``LocaleMiddleware`` for operators' pages only (see the module's docstring)."""

    def process_request(self, request: HttpRequest) -> None:
        if wants_operator_language(request):
            super().process_request(request)
            return
        translation.activate(settings.LANGUAGE_CODE)
        request.LANGUAGE_CODE = translation.get_language()

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if wants_operator_language(request):
            return super().process_response(request, response)
        return response
