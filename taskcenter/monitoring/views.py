"""``/healthz``, ``/readyz`` and ``/metrics``: plain Django views, outside the REST API (so not
in its OpenAPI schema, its authentication or its throttles). ``MonitoringEndpointsMiddleware``
answers them before the rest of the middleware."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from taskcenter.monitoring import access
from taskcenter.monitoring.exposition import build_registry
from taskcenter.monitoring.readiness import readiness

NO_STORE = {"Cache-Control": "no-store"}


def healthz(request: HttpRequest) -> HttpResponse:
    """The process is alive and answering; touches nothing else (a liveness probe restarts the
    process on failure, which would not mend a database outage)."""
    return JsonResponse({"status": "ok"}, headers=NO_STORE)


def readyz(request: HttpRequest) -> HttpResponse:
    """Ready to serve: 200, or 503 naming the checks that failed."""
    checks = readiness()
    failed = [name for name, result in checks.items() if result != "ok"]
    body: dict[str, object] = {"status": "unavailable" if failed else "ok", "checks": checks}
    if failed:
        body["failed"] = failed
    return JsonResponse(body, status=503 if failed else 200, headers=NO_STORE)


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus' text exposition format, for allowed addresses or the bearer token."""
    refused = access.refusal(request)
    if refused == 401:
        response = JsonResponse({"detail": "A valid bearer token is required."}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if refused is not None:
        return JsonResponse({"detail": "Not allowed from this address."}, status=refused)
    return HttpResponse(
        generate_latest(build_registry()), content_type=CONTENT_TYPE_LATEST, headers=NO_STORE
    )
