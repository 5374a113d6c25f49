"""The monitoring middleware, at the top of ``MIDDLEWARE`` (after only the body drain).

``MonitoringEndpointsMiddleware`` answers the probes and the scrape itself, before anything
that could redirect them (HTTPS redirect, ``APPEND_SLASH``), refuse them (``ALLOWED_HOSTS``:
Kubernetes and Prometheus call a pod by its IP), ask for a login, set a cookie or a language.
``HttpMetricsMiddleware`` times every other request and counts it by route.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed

from taskcenter.monitoring import views
from taskcenter.monitoring.http_metrics import observe_request

ENDPOINTS: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": views.healthz,
    "/readyz": views.readyz,
    "/metrics": views.metrics,
}


class MonitoringEndpointsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = ENDPOINTS.get(request.path_info.rstrip("/") or "/")
        if view is None:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        return view(request)


class HttpMetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        began = time.perf_counter()
        response = self.get_response(request)
        # Until the response object exists: a stream's body (SSE) is not waited for.
        observe_request(request, response.status_code, time.perf_counter() - began)
        return response
