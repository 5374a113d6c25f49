"""The data sync service's envelope: the Go services' ``{"success", "data"}`` and
``{"success": false, "error": {code, message, fields}}`` (kept in the core's toolkit, shared with
the integration tasks table), its status words, and its ``task_<n>`` ids in messages.

``SyncView`` is the base of every sync view: errors in this envelope (its one error hook is the
toolkit's ``envelope_exception_handler``), sync tasks the caller may see, 404s naming the id.
"""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from syncing.api.serializers import parse_id, public_id, sync_task_data
from syncing.sync import SYNC_KINDS
from taskcenter.api.envelope import EnvelopeAPIView, ok
from taskcenter.api.status_words import SYNC
from taskcenter.errors import InvalidTransition
from taskcenter.models import Task


class SyncView(EnvelopeAPIView):
    status_dialect = SYNC

    def tasks(self) -> QuerySet[Task]:
        return Task.objects.visible_to(self.request.user).filter(task_type__in=SYNC_KINDS)

    def get_task(self, raw_id: str) -> Task:
        pk = parse_id(raw_id)
        task = self.tasks().filter(pk=pk).first() if pk is not None else None
        if task is None:
            raise NotFound(f"Sync task {raw_id} not found")
        return task

    def http_method_not_allowed(self, request, *args, **kwargs):
        # A path segment that cannot be a task id is a 404 whatever the method: `POST
        # /tasks/cancel` (a cancel whose id was left out) names no task, which says more than
        # "POST not allowed". A well-formed id keeps the 405, whether or not the task exists.
        if "task_id" in kwargs and parse_id(kwargs["task_id"]) is None:
            raise NotFound(f"Sync task {kwargs['task_id']} not found")
        return super().http_method_not_allowed(request, *args, **kwargs)

    def describe_refusal(self, exc: InvalidTransition, status_now: object) -> str:
        if exc.action == "reconfigure":
            return (
                f"Only a pending task's config can be updated; task {public_id(exc.task_id)} "
                f"is {status_now}"
            )
        return f"Cannot {exc.action} task {public_id(exc.task_id)}: it is {status_now}"

    def task_response(self, task: Task, status: int = 200) -> Response:
        """The task as the call left it, not read again after the commit: a worker woken by it
        may already have claimed it, and the answer would depend on that race."""
        return ok(sync_task_data(task, live=True), status)
