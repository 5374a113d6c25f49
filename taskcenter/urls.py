from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.views import defaults
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("taskcenter.api.urls")),
    path("api/sync/", include("syncing.urls")),
    path("api/integration/", include("integration.urls")),
    path("api/task/", include("generation.urls")),  # seed 004 dialect
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path(
        "api/redoc/",
        SpectacularRedocView.as_view(url_name="schema", template_name="api/redoc.html"),
        name="redoc",
    ),
    path("api/auth/", include("rest_framework.urls")),
    path("", include("publishing.urls")),  # seed 000's paths, at the root as it serves them
]


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """API clients get ``{"detail": ...}`` for unknown URLs too; people get the HTML page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Internal server error."}, status=500)
    return defaults.server_error(request)


handler404 = not_found
handler500 = server_error
