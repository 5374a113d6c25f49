"""What a page needs to update itself from the task event streams (``static/taskcenter/live.js``).

A page puts ``live_updates(...)`` in its context as ``live_updates`` and includes
``admin/taskcenter/live.html``; elements marked ``data-task-status="<id>"`` and
``data-task-progress="<id>"`` follow that task's events, and ``data-live-region`` elements (with
an ``id``) are fetched again from the same page when events arrive, for counts the page adds up.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils.http import urlencode

from taskcenter.admin.badges import DEFAULT_COLOUR, STATUS_COLOURS
from taskcenter.models import Status


def live_updates(
    *, task_id: int | None = None, query: dict[str, str] | None = None, refresh: bool = False
) -> dict[str, Any]:
    """The script's settings: which stream to open, and how statuses are labelled and coloured."""
    if task_id is not None:
        stream = reverse("task-stream", kwargs={"pk": task_id})
    else:
        stream = reverse("events-stream")
    if query:
        stream += "?" + urlencode(query)
    return {
        "stream": stream,
        "refresh": refresh,
        "statuses": {
            str(status): {
                "label": str(label),
                "colour": STATUS_COLOURS.get(status, DEFAULT_COLOUR),
            }
            for status, label in Status.choices
        },
    }
