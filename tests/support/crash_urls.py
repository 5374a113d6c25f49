"""The real URLconf plus, under each dialect, a view of that dialect that crashes: proves
that an exception no handler expects still answers the dialect's 500 envelope."""

from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.views import APIView

from generation.api.views import GenerationView
from integration.api.views import IntegrationView
from publishing.api.envelope import SocialAutoUploadView
from syncing.api.views import SyncView
from taskcenter.urls import handler400, handler403, handler404, handler500, urlpatterns

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]


def crashing(base: type[APIView]) -> type[APIView]:
    def get(self: APIView, request: Request) -> None:
        raise RuntimeError("a bug in a dialect view")

    return type(f"Crashing{base.__name__}", (base,), {"permission_classes": [AllowAny], "get": get})


urlpatterns = [
    path("api/task/crash", crashing(GenerationView).as_view()),
    path("api/sync/crash", crashing(SyncView).as_view()),
    path("api/integration/crash", crashing(IntegrationView).as_view()),
    path("api/v1/crash", crashing(APIView).as_view()),
    path("crash", crashing(SocialAutoUploadView).as_view()),
    *urlpatterns,
]
