"""Creating a publish batch: one Task and one PublishTaskRecord per file x account.

The whole batch is one transaction of ``lifecycle.create_task(start=True)`` calls, so it exists
completely or not at all; the engine gets the attempts only when it commits, and the request
returns at once (the worker uploads, never the request).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from taskcenter import lifecycle

from .models import PlatformAccount, PublishTaskRecord, VideoFile
from .task_kinds import KIND

BATCH_MAX = 100  # records per batch, as the canonical tasks/batch


def new_batch_id() -> str:
    return uuid.uuid4().hex


def create_publish_batch(
    *,
    owner: User,
    files: Sequence[VideoFile],
    accounts: Sequence[PlatformAccount],
    title: str,
    tags: Sequence[str] = (),
    schedule_time: datetime | None = None,
    schedule_times: Sequence[datetime | None] = (),
    options: Mapping[str, Any] | None = None,
    batch_id: str = "",
) -> tuple[str, list[PublishTaskRecord]]:
    """Queue ``files`` x ``accounts`` under one batch id; return it and the records, in order.

    Every file goes out at ``schedule_time`` (None: at once), or file *i* at
    ``schedule_times[i]`` when those are given (``publishing.schedule``); ``options`` are the
    platform settings every record passes on (category, is_draft, product_link, product_title).
    The caller has checked that the files and accounts are the owner's and that the batch is
    at most ``BATCH_MAX``; parameters are validated again by the kind.
    """
    if schedule_times and len(schedule_times) != len(files):
        raise ValueError("schedule_times must name one time per file")
    batch_id = batch_id or new_batch_id()
    records: list[PublishTaskRecord] = []
    with transaction.atomic():
        for index, video in enumerate(files):
            at = schedule_times[index] if schedule_times else schedule_time
            for account in accounts:
                task = lifecycle.create_task(
                    owner=owner,
                    actor=owner,
                    task_type=KIND,
                    parameters={
                        "file_id": video.pk,
                        "account_id": account.pk,
                        "title": title,
                        "tags": list(tags),
                        "schedule_time": at.isoformat() if at else None,
                        **(options or {}),
                    },
                    start=True,
                    name=f"{video.filename} -> {account.account_name}"[:200],
                    platform=account.platform_name,
                    action="publish",
                    account_id=str(account.pk),
                    batch_id=batch_id,
                )
                records.append(
                    PublishTaskRecord.objects.create(
                        task=task,
                        batch_id=batch_id,
                        filename=video.filename,
                        file=video,
                        account=account,
                        account_name=account.account_name,
                        platform_name=account.platform_name,
                        platform_type=account.platform_type,
                    )
                )
    return batch_id, records
