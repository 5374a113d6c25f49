"""What a user may see: their own rows, or every row for active staff.

Every list and lookup of tasks and of what hangs off them (executions, events, results, publish
records) is scoped by ``visible_to(user)``, so another user's object is simply not there (a 404,
never a 403) and the rule is written once.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from django.db import models


class VisibleToQuerySet(models.QuerySet):
    """A queryset that knows the path from its rows to their owner (``owner_path``)."""

    owner_path: ClassVar[str] = "owner"

    def visible_to(self, user: Any) -> Self:
        if user is None or not user.is_authenticated:
            return self.none()
        if user.is_staff and user.is_active:
            return self
        return self.filter(**{self.owner_path: user})


class TaskQuerySet(VisibleToQuerySet):
    owner_path = "owner"


class TaskChildQuerySet(VisibleToQuerySet):
    """Rows that belong to a task: executions, events, results, publish records."""

    owner_path = "task__owner"
