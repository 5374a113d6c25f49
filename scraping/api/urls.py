"""The XGet scraper API's result routes under /api/v1/ (before the core's tasks/{id} routes)."""

from django.urls import re_path

from taskcenter.api.views import ID_PATTERN

from .views import ResultSearchView, TaskExportView, TaskResultsView

urlpatterns = [
    re_path(r"^tasks/search/results$", ResultSearchView.as_view(), name="task-results-search"),
    re_path(rf"^tasks/export/(?P<id>{ID_PATTERN})$", TaskExportView.as_view(), name="task-export"),
    re_path(
        rf"^tasks/(?P<id>{ID_PATTERN})/results$", TaskResultsView.as_view(), name="task-results"
    ),
]
