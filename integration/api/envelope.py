"""The integration tasks table's envelope: the Go services' ``{"success", "data"}`` and
``{"success": false, "error": {...}}`` (kept in the core's toolkit, shared with the data sync
service), with the table's numeric statuses (0 pending, 1 running, 2 done, 3 failed).

``IntegrationView`` is the base of its views: errors in this envelope (the toolkit's
``envelope_exception_handler`` is its one error hook) and only rows the caller may see.
"""

from __future__ import annotations

from django.db.models import QuerySet

from taskcenter.api.envelope import EnvelopeAPIView
from taskcenter.api.status_words import INTEGRATION
from taskcenter.models import Task


class IntegrationView(EnvelopeAPIView):
    status_dialect = INTEGRATION

    def tasks(self) -> QuerySet[Task]:
        return Task.objects.visible_to(self.request.user).filter(integration_id__isnull=False)
