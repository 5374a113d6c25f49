from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views import defaults
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from taskcenter.api.dialect_errors import error_response
from taskcenter.monitoring import views as monitoring

# The apps' routes are included by name: the core's modules never import the apps.
urlpatterns = [
    # Answered first by MonitoringEndpointsMiddleware; routed here too, so they have names.
    path("healthz", monitoring.healthz, name="healthz"),
    path("readyz", monitoring.readyz, name="readyz"),
    path("metrics", monitoring.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    # The admin's language switch (set_language). No language prefix on any URL: the dialects'
    # paths are their clients' contract.
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", include("scraping.api.urls")),  # XGet scraper API: results, export, search
    path("api/v1/", include("taskcenter.api.urls")),
    path("api/sync/", include("syncing.api.urls")),
    path("api/integration/", include("integration.api.urls")),
    path("api/task/", include("generation.api.urls")),  # new-api task center
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path(
        "api/redoc/",
        SpectacularRedocView.as_view(url_name="schema", template_name="api/redoc.html"),
        name="redoc",
    ),
    path("api/auth/", include("rest_framework.urls")),
    # social-auto-upload's publishing API, at the site root as it serves them
    path("", include("publishing.api.urls")),
    # its web frontend's built files (/, /assets/...), when SOCIAL_AUTO_UPLOAD_FRONTEND_DIR is set
    path("", include("publishing.frontend")),
]


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Refused by Django before any view (too many fields, a bad Host): the URL's envelope."""
    return error_response(request, 400, "Bad request.") or defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    return error_response(request, 403, "Permission denied.") or defaults.permission_denied(
        request, exception
    )


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """API clients get their dialect's envelope for unknown URLs too; people get the HTML page."""
    return error_response(request, 404, "Not found.") or defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """A crash (Django has logged it) in the envelope of the URL's dialect."""
    return error_response(request, 500, "Internal server error.") or defaults.server_error(request)


handler400 = bad_request
handler403 = permission_denied
handler404 = not_found
handler500 = server_error
