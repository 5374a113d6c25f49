"""Creating a publish batch: one Task and one PublishTaskRecord per file x account.

The whole batch is one transaction of ``lifecycle.create_task(start=True)`` calls, so it exists
completely or not at all; the engine gets the attempts only when it commits, and the request
returns at once (the worker uploads, never the request).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

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
    batch_id: str = "",
) -> tuple[str, list[PublishTaskRecord]]:
    """Queue ``files`` x ``accounts`` under one batch id; return it and the records, in order.

    The caller has checked that the files and accounts are the owner's and that the batch is
    at most ``BATCH_MAX``; parameters are validated again by the kind.
    """
    batch_id = batch_id or new_batch_id()
    records: list[PublishTaskRecord] = []
    with transaction.atomic():
        for video in files:
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
                        "schedule_time": schedule_time.isoformat() if schedule_time else None,
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
