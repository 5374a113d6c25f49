"""new-api's routes, included at ``/api/task/`` by ``taskcenter.urls``."""

from django.urls import path

from generation.api import views

urlpatterns = [
    path("", views.AllTaskList.as_view(), name="generation-all-tasks"),
    path("self", views.SelfTaskList.as_view(), name="generation-self-tasks"),
    path("stats", views.AllTaskStats.as_view(), name="generation-all-stats"),
    path("self/stats", views.SelfTaskStats.as_view(), name="generation-self-stats"),
    path("submit", views.SubmitTask.as_view(), name="generation-submit"),
]
