"""The rows a submission writes, shared by its two ways of writing them.

``submission`` writes any number of tasks in a few multi-row statements; ``single_statement``
writes one task in one statement on PostgreSQL. Both take an ``Item`` (one task, checked),
build its task row and its ``created`` event the same way, and hand back the new row as a
``Task`` without reading it again.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import ForeignKey
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init

from taskcenter.kinds import TaskKind
from taskcenter.lib.bulk_insert import RowInserter
from taskcenter.lifecycle.transitions import Actor, _actor_fields
from taskcenter.models import EventVerb, Task, TaskEvent

TASK_FIELDS = tuple(field for field in Task._meta.concrete_fields if not field.primary_key)
TASK_ROWS = RowInserter(Task, [field.name for field in TASK_FIELDS], returning=True)
EVENT_ROWS = RowInserter(
    TaskEvent,
    ("task", "actor_user", "actor", "verb", "from_status", "to_status", "data", "at"),
    returning=False,
)


@dataclass
class Item:
    """One task to submit, checked and ready to write."""

    owner: AbstractBaseUser
    kind: TaskKind
    fields: dict[str, Any]  # the Task columns the item sets, by field name
    start: bool
    price: int
    key: str | None = None
    digest: str = ""
    replay_of: int | None = None  # the task an earlier use of the key made
    task: Task | None = None


def task_row(item: Item) -> tuple:
    """The item's task row, in ``TASK_ROWS``' column order, defaults under what it sets."""
    fields = item.fields
    row = {**_FIXED_DEFAULTS, **fields}
    for name, field in _MADE_DEFAULTS:
        if name not in fields:
            row[name] = field.get_default()
    return _TASK_ROW(row)


# A default that is a function is called for each row that leaves its column out (a fresh
# ``{}`` each); the rest are fixed values, shared.
_MADE_DEFAULTS = [
    (field.name, field) for field in TASK_FIELDS if field.has_default() and callable(field.default)
]
_FIXED_DEFAULTS = {
    field.name: field.get_default()
    for field in TASK_FIELDS
    if not (field.has_default() and callable(field.default))
}
_TASK_ROW = operator.itemgetter(*(field.name for field in TASK_FIELDS))
_TASK_ATTNAMES = (Task._meta.pk.attname, *(field.attname for field in TASK_FIELDS))


def loaded_task(task_id: int, row: tuple, owner: AbstractBaseUser, alias: str) -> Task:
    """The new row as a ``Task``, as a query would return it, with its owner attached.

    ``Model.from_db`` sets the same attributes one ``setattr`` at a time and sends the init
    signals; a bulk submission builds thousands, so unless someone listens to those signals
    the instance is filled in one step.
    """
    values = (task_id, *row)
    if pre_init.has_listeners(Task) or post_init.has_listeners(Task):
        task = Task.from_db(alias, None, values)  # type: ignore[arg-type]
    else:
        task = Task.__new__(Task)
        task.__dict__.update(zip(_TASK_ATTNAMES, values, strict=True))
        task._state = ModelState()
        task._state.adding, task._state.db = False, alias
    _OWNER.set_cached_value(task, owner)
    return task


_OWNER = cast(ForeignKey, Task._meta.get_field("owner"))


def created_events(items: list[Item], actor: Actor, now: datetime) -> list[tuple]:
    """The ``created`` event of each item (written, so with its task), in ``EVENT_ROWS``' order."""
    who: dict[int, tuple[int | None, str]] = {}
    data: dict = {}  # one empty object for every row: prepared once
    rows = []
    for item in items:
        acting = actor or item.owner
        key = id(acting)
        if key not in who:
            fields = _actor_fields(acting)
            user = fields["actor_user"]
            who[key] = (user.pk if user is not None else None, fields["actor"])
        user_id, name = who[key]
        # None for a task not written yet (``single_statement`` writes both at once).
        task_id = item.task.pk if item.task is not None else None
        rows.append((task_id, user_id, name, _CREATED, "", item.fields["status"], data, now))
    return rows


_CREATED = EventVerb.CREATED.value
