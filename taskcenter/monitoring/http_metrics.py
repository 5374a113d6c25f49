"""HTTP request metrics: count by method, route and status, latency by method and route.

Labels are bounded so a scanner cannot grow the series without limit: the route is the URL
pattern that matched, never the raw path; a request no pattern matched is ``unmatched``;
methods outside the standard ones are ``other``. A regular expression's named group (DRF's
routers write ``(?P<pk>[0-9]{1,18})``) is written as its name, ``<pk>``, as Django's own
converters are (``<int:pk>``): ``/api/v1/tasks/<pk>/start`` reads better on a dashboard and in
a query.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.http import HttpRequest
from prometheus_client import Counter, Histogram

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
STATIC = "static"
# A named group without parentheses inside it (DRF's are all such).
NAMED_GROUP = re.compile(r"\(\?P<(\w+)>[^()]*\)")

# registry=None: ``monitoring.exposition`` decides where they are read from (this process, or
# every process's files in multiprocess mode).
REQUESTS = Counter(
    "taskcenter_http_requests",
    "HTTP requests answered, by method, route pattern and status code.",
    ["method", "route", "status"],
    registry=None,
)
LATENCY = Histogram(
    "taskcenter_http_request_duration_seconds",
    "Time from the request reaching Django's middleware to its response, by method and route.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, float("inf")),
    registry=None,
)


def route_of(request: HttpRequest) -> str:
    """The URL pattern that served ``request``, as a label value."""
    match = getattr(request, "resolver_match", None)
    if match is not None and match.route:
        return "/" + NAMED_GROUP.sub(r"<\1>", match.route.lstrip("^").removesuffix("$"))
    if settings.STATIC_URL and request.path.startswith("/" + settings.STATIC_URL.lstrip("/")):
        return STATIC  # whitenoise answers these before URL resolution
    return UNMATCHED


def method_of(request: HttpRequest) -> str:
    method = (request.method or "").upper()
    return method if method in METHODS else "other"


def observe_request(request: HttpRequest, status: int, seconds: float) -> None:
    method, route = method_of(request), route_of(request)
    REQUESTS.labels(method=method, route=route, status=str(status)).inc()
    LATENCY.labels(method=method, route=route).observe(seconds)
