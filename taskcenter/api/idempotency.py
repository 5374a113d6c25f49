"""``Idempotency-Key`` on POST /api/v1/tasks: a client that retries after a timeout gets the task
its first request created instead of a duplicate.

The key is stored with the task in the same transaction, under a unique (owner, key)
constraint, so two concurrent requests with one key cannot both create a task: the loser's
transaction rolls back (its task with it) and it answers with the winner's task.

A key replays for ``IDEMPOTENCY_KEY_TTL_SECONDS`` (default a day), as payment APIs do: after
that the same key makes a new task, and the expired row is replaced in that transaction.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.request import Request

from .. import lifecycle
from ..models import IdempotencyKey, Task
from .authentication import authenticated_user

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
KEY_PATTERN = re.compile(r"[!-~]{1,255}")  # visible ASCII, no spaces


class KeyReused(APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = f"This {HEADER} was already used with a different request body."
    default_code = "idempotency_key_reused"


def key_from(request: Request) -> str | None:
    """The request's key, or None; a malformed key is a 400 naming the header."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    key = raw.strip()
    if not KEY_PATTERN.fullmatch(key):
        raise ValidationError(
            {HEADER: [f"Must be 1 to {MAX_KEY_LENGTH} visible ASCII characters, no spaces."]}
        )
    return key


def request_hash(request: Request, start: bool | None) -> str:
    """A digest of what the client asked for: the JSON body and the ``start`` query flag."""
    body = request.data.dict() if hasattr(request.data, "dict") else request.data
    canonical = json.dumps({"body": body, "start": start}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def _expired_before() -> datetime:
    ttl = settings.TASKCENTER["IDEMPOTENCY_KEY_TTL_SECONDS"]
    return timezone.now() - timedelta(seconds=ttl)


def _replay(owner: User, key: str, digest: str) -> Task | None:
    stored = (
        IdempotencyKey.objects.filter(owner=owner, key=key, created_at__gte=_expired_before())
        .select_related("task")
        .first()
    )
    if stored is None:
        return None
    if stored.request_hash != digest:
        raise KeyReused()
    return stored.task


def create_once(
    request: Request, key: str, digest: str, fields: dict[str, Any], *, owner: User | None = None
) -> tuple[Task, bool]:
    """Create the task unless this key was used before; return it and whether it is new.

    Keys belong to the caller who sends them; the task to ``owner`` (default: the caller),
    for staff creating on someone's behalf.
    """
    caller = authenticated_user(request)
    earlier = _replay(caller, key, digest)
    if earlier is not None:
        return earlier, False
    try:
        with transaction.atomic():
            IdempotencyKey.objects.filter(
                owner=caller, key=key, created_at__lt=_expired_before()
            ).delete()
            task = lifecycle.create_task(owner=owner or caller, actor=caller, **fields)
            IdempotencyKey.objects.create(owner=caller, key=key, request_hash=digest, task=task)
    except IntegrityError:
        earlier = _replay(caller, key, digest)
        if earlier is None:
            raise
        return earlier, False
    return task, True
