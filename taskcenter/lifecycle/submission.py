"""Submitting tasks: ``create_task`` makes one, ``create_tasks`` many; both write through here.

A submission is one transaction that writes the task rows (PENDING, or QUEUED with ``start``),
one ``created`` event each, the owners' quota charges (``hooks.Billing.charge_many``), the
idempotency keys given, and the engine's jobs of the queued tasks (``hooks.BulkDispatcher``: in
the transaction on the database engine, after commit on any other). Each kind of row is one
multi-row INSERT per thousand rows, a COPY on PostgreSQL (``taskcenter.lib.bulk_insert``), and
each owner's balance one guarded UPDATE, so one task costs five statements and ten thousand a
few dozen. On PostgreSQL ``create_task`` writes its one task in a single statement instead
(``single_statement``), and comes here only when that cannot (a balance short or not opened
yet, an engine outside the database).

**All or nothing.** ``create_tasks`` checks every item before it writes anything (its kind, its
parameters, its price, its key) and refuses the whole call with one ``ValidationError`` that
names every refused item by its position; a balance that cannot pay for an owner's tasks is one
``InsufficientQuota``, and nothing is written either way.

**Idempotency keys.** An item may carry an ``idempotency_key`` (and the ``request_hash`` of what
was asked; by default a digest of the item). A key seen before, within
``IDEMPOTENCY_KEY_TTL_SECONDS``, for the same request returns the task it made then instead of a
new one; for another request it refuses the item. Keys belong to the acting user (else the
task's owner), as on ``POST /api/v1/tasks``; the same key twice in one call is read as the same
request sent twice. Two calls racing with one key: the database's unique key refuses the
second, which then reads the first one's tasks.

**Durability.** A submission is on disk when it returns. A deployment that values the
milliseconds more may set ``TASKCENTER["ASYNC_SUBMIT"]``: on PostgreSQL a submission that is its
own transaction then commits without waiting for its WAL to reach the disk
(``synchronous_commit`` off for that transaction only); a flush costs milliseconds, several
times the rest of a submission. A crash of the database server can then lose the submissions
of its last moments (at most three WAL writer delays, 0.6 s by default), whole: tasks, events,
charges and jobs together, never a part of one. SQLite in WAL mode with ``synchronous=NORMAL``
(this project's setting) survives the crash of any process and may lose its last commits only
on a power cut.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from rest_framework.exceptions import ErrorDetail, ValidationError

from taskcenter.errors import UnknownKind
from taskcenter.kinds import TaskKind, get_kind
from taskcenter.lib.bulk_insert import RowInserter
from taskcenter.lifecycle import hooks, single_statement
from taskcenter.lifecycle.submission_rows import (
    EVENT_ROWS,
    TASK_FIELDS,
    TASK_ROWS,
    Item,
    created_events,
    loaded_task,
    task_row,
)
from taskcenter.lifecycle.transitions import _MAX_ROUNDS, Actor, _dispatch_jobs
from taskcenter.models import IdempotencyKey, Status, Task

# Set by the lifecycle itself, never by an item's fields.
_RESERVED = frozenset(
    {"id", "status", "created_at", "updated_at", "submitted_at", "quota_refunded_at"}
)
_SETTABLE = frozenset(field.name for field in TASK_FIELDS) - _RESERVED
_OWN_KEYS = frozenset(
    {"owner", "task_type", "parameters", "start", "max_attempts", "quota"}
    | {"idempotency_key", "request_hash"}
)
_KEY_ROWS = RowInserter(
    IdempotencyKey, ("owner", "key", "request_hash", "task", "created_at"), returning=False
)
KEY_REUSED = "This idempotency key was already used with a different request."


def create_tasks(
    items: Sequence[Mapping[str, Any]],
    *,
    owner: AbstractBaseUser | None = None,
    actor: Actor = None,
) -> list[Task]:
    """Create many tasks in one transaction; return them in the order of ``items``.

    Each item takes ``create_task``'s keyword arguments (``owner``, default ``owner``;
    ``task_type``, ``parameters``, ``start``, ``max_attempts``, ``quota`` and task fields), plus
    an optional ``idempotency_key`` and ``request_hash``. Each is validated by its kind and
    charged to its owner as ``create_task`` would, and gets its ``created`` event; the queued ones
    are handed to the engine. All or nothing: ``ValidationError`` (a dict from each refused item's
    position to its errors, an unknown kind as ``task_type`` with code ``unknown_kind``) or
    ``InsufficientQuota``, and nothing is written. A replayed key returns the task it made first.
    """
    if not items:
        return []
    now = timezone.now()
    refused: dict[int, Any] = {}
    prepared: list[Item | None] = []
    by_kind: dict[str, list[int]] = {}
    kinds: dict[str, TaskKind] = {}
    for index, item in enumerate(items):
        try:
            fields = dict(item)
            fields.setdefault("owner", owner)
            prepared.append(_unchecked(fields, now, kinds))
        except UnknownKind as exc:
            refused[index] = {"task_type": [ErrorDetail(str(exc), code="unknown_kind")]}
            prepared.append(None)
            continue
        by_kind.setdefault(item["task_type"], []).append(index)
    for indexes in by_kind.values():
        kind = prepared[indexes[0]].kind  # type: ignore[union-attr]
        checked = kind.validate_many_parameters(
            [items[index].get("parameters") for index in indexes]
        )
        for index, outcome in zip(indexes, checked, strict=True):
            if isinstance(outcome, ValidationError):
                refused[index] = outcome.detail
            else:
                _with_parameters(prepared[index], outcome)  # type: ignore[arg-type]
    if refused:
        raise ValidationError(refused)  # type: ignore[arg-type]
    ready: list[Item] = [item for item in prepared if item is not None]
    keyed = any(item.key for item in ready)
    for round_ in range(_MAX_ROUNDS):
        try:
            return _submit(ready, actor, now, keyed=keyed)
        except IntegrityError:
            # A call racing this one wrote one of our keys first: read them again, as replays.
            if not keyed or round_ == _MAX_ROUNDS - 1:
                raise
            for again in ready:
                again.replay_of, again.task = None, None
    raise AssertionError("unreachable")


def submit_one(
    *,
    owner: AbstractBaseUser,
    task_type: str,
    parameters: dict | None,
    start: bool,
    actor: Actor,
    max_attempts: int | None,
    fields: dict[str, Any],
) -> Task:
    """``create_task``'s body: raises ``UnknownKind``, ``ValidationError`` or ``ValueError``."""
    now = timezone.now()
    item = _unchecked(
        {
            **fields,
            "owner": owner,
            "task_type": task_type,
            "start": start,
            "max_attempts": max_attempts,
        },
        now,
    )
    _with_parameters(item, item.kind.validate_parameters(parameters))
    if connection.vendor == "postgresql":
        task = single_statement.submit(item, actor, now, using=connection.alias)
        if task is not None:
            return task
    return _submit([item], actor, now, keyed=False)[0]


# --- checking ----------------------------------------------------------------------------------


def _unchecked(
    fields: dict[str, Any], now: datetime, kinds: dict[str, TaskKind] | None = None
) -> Item:
    """The item with everything but its parameters checked (``_with_parameters`` does those).

    ``kinds`` remembers the kinds looked up in one call (a batch names a few, many times)."""
    owner = fields.pop("owner", None)
    if not isinstance(owner, AbstractBaseUser):
        raise TypeError("Every task needs an owner (a user)")
    unknown = set(fields) - _SETTABLE - _OWN_KEYS
    if unknown:
        raise TypeError(f"Not a task field: {', '.join(sorted(unknown))}")
    task_type = fields.pop("task_type")
    kind = kinds.get(task_type) if kinds is not None else None
    if kind is None:
        kind = get_kind(task_type)
        if kinds is not None:
            kinds[task_type] = kind
    fields.pop("parameters", None)
    start = bool(fields.pop("start", False))
    max_attempts = fields.pop("max_attempts", None)
    explicit = fields.pop("quota", None)
    price = kind.quota if explicit is None else int(explicit)
    if price < 0:
        raise ValueError("quota cannot be negative")
    key = fields.pop("idempotency_key", None)
    digest = fields.pop("request_hash", None)
    fields.update(
        task_type=task_type,
        status=Status.QUEUED.value if start else Status.PENDING.value,
        max_attempts=max_attempts or kind.retry.max_attempts,
        platform=fields.get("platform") or kind.platform,
        action=fields.get("action") or kind.action,
        created_at=now,
        updated_at=now,
        submitted_at=now if start else None,
        quota=price,
    )
    fields["owner"] = owner.pk
    item = Item(owner=owner, kind=kind, fields=fields, start=start, price=price, key=key)
    item.digest = digest or ""
    return item


def _with_parameters(item: Item, cleaned: dict) -> None:
    item.fields["parameters"] = cleaned
    item.fields.update(item.kind.column_values(cleaned))
    if item.key and not item.digest:
        item.digest = _digest(item)


def _digest(item: Item) -> str:
    """What an item asked for, to tell a replay from another request under the same key."""
    asked = {
        name: value
        for name, value in item.fields.items()
        if name not in ("created_at", "updated_at", "submitted_at")
    }
    canonical = json.dumps(asked, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


# --- writing -----------------------------------------------------------------------------------


@contextmanager
def _submission() -> Iterator[None]:
    """The submission's transaction (see the module's note on durability)."""
    own = not connection.in_atomic_block
    with transaction.atomic():
        if own and connection.vendor == "postgresql" and settings.TASKCENTER["ASYNC_SUBMIT"]:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield


def _submit(items: list[Item], actor: Actor, now: datetime, *, keyed: bool) -> list[Task]:
    with _submission():
        if keyed:
            expired = _resolve_keys(items, actor, now)
        new = [item for item in items if item.replay_of is None and item.task is None]
        rows = [task_row(item) for item in new]
        ids = TASK_ROWS.insert(rows)
        alias = connection.alias
        for item, task_id, row in zip(new, ids, rows, strict=True):
            item.task = loaded_task(task_id, row, item.owner, alias)
        if keyed:
            _write_keys(items, actor, expired, now)
        # After the task rows: the task first, then the account, as every quota writer locks.
        hooks.billing().charge_many(
            [
                hooks.Charge(item.owner.pk, item.task.pk, item.price, item.kind.name)  # type: ignore[union-attr]
                for item in new
                if item.price
            ]
        )
        EVENT_ROWS.insert(created_events(new, actor, now))
        queued = [
            hooks.QueuedTask(item.task.pk, item.task.priority, item.task.run_after)  # type: ignore[union-attr]
            for item in new
            if item.start
        ]
        if queued:
            _dispatch_jobs(queued)
    if keyed:
        _load_replays(items)
    return [item.task for item in items]  # type: ignore[misc]


# --- idempotency keys ----------------------------------------------------------------------


def _key_owner(item: Item, actor: Actor) -> AbstractBaseUser:
    return actor if isinstance(actor, AbstractBaseUser) else item.owner


def _resolve_keys(items: list[Item], actor: Actor, now: datetime) -> list[tuple[int, str]]:
    """Mark the items whose key was used before as replays, refuse those whose key was used for
    another request; return the expired keys to replace."""
    keyed = [item for item in items if item.key]
    owners = {_key_owner(item, actor).pk for item in keyed}
    keys = {item.key for item in keyed}
    fresh_after = now - timedelta(seconds=settings.TASKCENTER["IDEMPOTENCY_KEY_TTL_SECONDS"])
    stored: dict[tuple[int, str], tuple[str, int]] = {}
    expired: list[tuple[int, str]] = []
    rows = IdempotencyKey.objects.filter(owner_id__in=owners, key__in=keys).values_list(
        "owner_id", "key", "request_hash", "task_id", "created_at"
    )
    for owner_id, key, digest, task_id, created_at in rows:
        if created_at >= fresh_after:
            stored[(owner_id, key)] = (digest, task_id)
        else:
            expired.append((owner_id, key))
    refused: dict[int, Any] = {}
    first_in_call: dict[tuple[int, str], Item] = {}
    for index, item in enumerate(items):
        if not item.key:
            continue
        slot = (_key_owner(item, actor).pk, item.key)
        if slot in stored:
            digest, task_id = stored[slot]
            if digest != item.digest:
                refused[index] = _key_reused()
            item.replay_of = task_id
        elif slot in first_in_call:
            if first_in_call[slot].digest != item.digest:
                refused[index] = _key_reused()
            item.replay_of = -1  # resolved to the first one's task once it is written
        else:
            first_in_call[slot] = item
    if refused:
        raise ValidationError(refused)  # type: ignore[arg-type]
    return expired


def _key_reused() -> dict[str, list[ErrorDetail]]:
    return {"idempotency_key": [ErrorDetail(KEY_REUSED, code="idempotency_key_reused")]}


def _write_keys(
    items: list[Item], actor: Actor, expired: list[tuple[int, str]], now: datetime
) -> None:
    for owner_id, key in expired:
        IdempotencyKey.objects.filter(owner_id=owner_id, key=key).delete()
    written: dict[tuple[int, str], Item] = {}
    rows = []
    for item in items:
        if not item.key:
            continue
        slot = (_key_owner(item, actor).pk, item.key)
        if item.replay_of == -1:
            item.task = written[slot].task
        elif item.replay_of is None:
            written[slot] = item
            rows.append((slot[0], item.key, item.digest, item.task.pk, now))  # type: ignore[union-attr]
    # In key order, so two calls with overlapping keys meet on their first common key.
    _KEY_ROWS.insert(sorted(rows, key=lambda row: (row[0], row[1])))


def _load_replays(items: list[Item]) -> None:
    wanted = {item.replay_of for item in items if item.task is None and item.replay_of}
    if not wanted:
        return
    tasks = Task.objects.select_related("owner").in_bulk(wanted)
    for item in items:
        if item.task is None and item.replay_of is not None:
            item.task = tasks[item.replay_of]
