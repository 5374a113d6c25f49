"""The XGet scraper API's result routes under /api/v1/ (before the core's tasks/{id} routes)."""

from django.urls import re_path

from taskcenter.api.unknown_ids import ANY_ID, unknown_id_route
from taskcenter.api.views import ID_PATTERN

from .views import ResultSearchView, TaskExportView, TaskResultsView

urlpatterns = [
    re_path(r"^tasks/search/results$", ResultSearchView.as_view(), name="task-results-search"),
    re_path(rf"^tasks/export/(?P<id>{ID_PATTERN})$", TaskExportView.as_view(), name="task-export"),
    re_path(
        rf"^tasks/(?P<id>{ID_PATTERN})/results$", TaskResultsView.as_view(), name="task-results"
    ),
    # Any other id is the XGet scraper API's 404 "Task not found", as an unknown numeric one.
    unknown_id_route(rf"^tasks/export/(?P<id>{ANY_ID})$", ("GET", "POST")),
    unknown_id_route(rf"^tasks/(?P<id>{ANY_ID})/results$", ("GET",)),
]
