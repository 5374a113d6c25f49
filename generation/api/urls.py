"""new-api's routes, included at ``/api/task/`` by ``taskcenter.urls``."""

from django.urls import path

from generation.api import views

urlpatterns = [
    path("", views.AllTaskList.as_view(), name="generation-all-tasks"),
    path("self", views.SelfTaskList.as_view(), name="generation-self-tasks"),
    path("submit", views.SubmitTask.as_view(), name="generation-submit"),
]
