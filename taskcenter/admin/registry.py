"""Bulk actions that apps add to the task list, each with the permission check it needs.

The core's task admin cannot import the apps built on it; an app that has something to do with
a selection of tasks (scraping: export their results) registers it here from its ``admin.py``.
An action is offered, and runs, only for a user its ``allowed`` check accepts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.admin import AdminSite
from django.http import HttpRequest


@dataclass(frozen=True)
class TaskAction:
    function: Callable[..., Any]
    allowed: Callable[[AdminSite, HttpRequest], bool]

    @property
    def name(self) -> str:
        return self.function.__name__

    @property
    def description(self) -> str:
        return str(getattr(self.function, "short_description", self.name))


_task_actions: dict[str, TaskAction] = {}


def add_task_action(
    function: Callable[..., Any], *, allowed: Callable[[AdminSite, HttpRequest], bool]
) -> None:
    """Offer ``function`` (an admin action) on the task list to users ``allowed`` accepts."""
    action = TaskAction(function, allowed)
    _task_actions[action.name] = action


def task_actions() -> list[TaskAction]:
    return list(_task_actions.values())
