"""The integration tasks table's routes under /api/integration/, without trailing slashes."""

from django.urls import path, re_path

from integration.api import views

urlpatterns = [
    path("tasks", views.IntegrationTaskListView.as_view(), name="integration-tasks"),
    # Any one segment: an id that is not a number is a 404 in the dialect's envelope.
    re_path(
        r"^tasks/(?P<task_id>[^/]+)$",
        views.IntegrationTaskDetailView.as_view(),
        name="integration-task",
    ),
]
