"""The data sync service's routes under /api/sync/, without trailing slashes, as it writes them."""

from django.urls import path, re_path

from syncing.api import views

# Any one segment: the view answers an id that is not "task_<n>" or "<n>" with a 404 in the
# dialect's envelope (a URL that does not match would get the site-wide 404 body instead).
TASK_ID = r"(?P<task_id>[^/]+)"

urlpatterns = [
    path("tasks", views.SyncTaskListView.as_view(), name="sync-tasks"),
    path("tasks/statistics", views.SyncStatisticsView.as_view(), name="sync-statistics"),
    re_path(rf"^tasks/{TASK_ID}$", views.SyncTaskDetailView.as_view(), name="sync-task"),
    re_path(
        rf"^tasks/{TASK_ID}/cancel$", views.SyncTaskCancelView.as_view(), name="sync-task-cancel"
    ),
    re_path(rf"^tasks/{TASK_ID}/retry$", views.SyncTaskRetryView.as_view(), name="sync-task-retry"),
]
