"""Routes of /api/v1/, without trailing slashes, as the XGet scraper API writes them."""

from rest_framework.routers import DefaultRouter

from taskcenter.api.routes import registered_viewsets
from taskcenter.api.views import TaskExecutionViewSet, TaskViewSet

router = DefaultRouter(trailing_slash=False)
router.register("tasks", TaskViewSet, basename="task")
router.register("task-executions", TaskExecutionViewSet, basename="task-execution")
for prefix, viewset, basename in registered_viewsets():
    router.register(prefix, viewset, basename=basename)

urlpatterns = router.urls
