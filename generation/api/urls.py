"""Seed 004's routes, included at ``/api/task/`` by ``taskcenter.urls``."""

from django.urls import path

from generation.api import views as api

urlpatterns = [
    path("", api.AllTaskList.as_view(), name="generation-all-tasks"),
    path("self", api.SelfTaskList.as_view(), name="generation-self-tasks"),
    path("submit", api.SubmitTask.as_view(), name="generation-submit"),
]
