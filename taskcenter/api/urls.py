"""Routes of /api/v1/, without trailing slashes, as the XGet scraper API writes them."""

from django.urls import path, re_path
from rest_framework.routers import DefaultRouter

from taskcenter.api.event_streams import EventStreamView, TaskStreamView
from taskcenter.api.operations import QueueViewSet, WorkerProcessViewSet
from taskcenter.api.routes import registered_viewsets
from taskcenter.api.unknown_ids import task_routes
from taskcenter.api.views import ID_PATTERN, TaskExecutionViewSet, TaskViewSet

router = DefaultRouter(trailing_slash=False)
router.register("tasks", TaskViewSet, basename="task")
router.register("task-executions", TaskExecutionViewSet, basename="task-execution")
router.register("workers", WorkerProcessViewSet, basename="worker")
router.register("queues", QueueViewSet, basename="queue")
for prefix, viewset, basename in registered_viewsets():
    router.register(prefix, viewset, basename=basename)

# After the router's: ids it does not take (task-abc123, 40 digits) get the XGet 404 too.
urlpatterns = [
    path("events/stream", EventStreamView.as_view(), name="events-stream"),
    re_path(rf"^tasks/(?P<pk>{ID_PATTERN})/stream$", TaskStreamView.as_view(), name="task-stream"),
    *router.urls,
    *task_routes(),
]
