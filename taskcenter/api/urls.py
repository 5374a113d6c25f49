"""Routes of /api/v1/, without trailing slashes, as seed 003 writes them."""

from django.urls import re_path
from rest_framework.routers import DefaultRouter

from publishing.api import PublishTaskRecordViewSet

from .results import ResultSearchView, TaskExportView, TaskResultsView
from .views import ID_PATTERN, TaskExecutionViewSet, TaskViewSet

router = DefaultRouter(trailing_slash=False)
router.register("tasks", TaskViewSet, basename="task")
router.register("task-executions", TaskExecutionViewSet, basename="task-execution")
router.register("publish-records", PublishTaskRecordViewSet, basename="publish-record")

# Seed 003's result routes come before the router's tasks/{id} patterns.
urlpatterns = [
    re_path(r"^tasks/search/results$", ResultSearchView.as_view(), name="task-results-search"),
    re_path(rf"^tasks/export/(?P<id>{ID_PATTERN})$", TaskExportView.as_view(), name="task-export"),
    re_path(
        rf"^tasks/(?P<id>{ID_PATTERN})/results$", TaskResultsView.as_view(), name="task-results"
    ),
    *router.urls,
]
