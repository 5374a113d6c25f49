"""Routes of /api/v1/, without trailing slashes, as seed 003 writes them."""

from rest_framework.routers import DefaultRouter

from .views import TaskExecutionViewSet, TaskViewSet

router = DefaultRouter(trailing_slash=False)
router.register("tasks", TaskViewSet, basename="task")
router.register("task-executions", TaskExecutionViewSet, basename="task-execution")

urlpatterns = router.urls
