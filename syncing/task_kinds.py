"""The data sync service's two kinds: copy a data source's records into results, page by page.

Registered as ``sync.full_sync`` and ``sync.incremental_sync``; the data sync dialect
(``/api/sync/tasks``) names them ``full_sync`` and ``incremental_sync``.
"""

from __future__ import annotations

import re
from typing import Any

from rest_framework import serializers

from syncing.providers import is_dot_segment
from taskcenter.kinds import RetryPolicy, task_kind

from .sync import FULL, FULL_KIND, INCREMENTAL, INCREMENTAL_KIND, run_sync

PLATFORM = "datasource"
MAX_BATCH = 5000
DEFAULT_BATCH = 500
DEFAULT_TIMEOUT = 300.0
MAX_TIMEOUT = 86_400.0
# A data source that is down for a moment: seconds, then a minute or so.
BACKOFF = RetryPolicy(base_delay=2.0, factor=3.0, max_delay=120.0)
IDENTIFIER = r"\A[A-Za-z0-9_.:-]{1,64}\Z"
IDENTIFIER_MESSAGE = "Must be 1-64 letters, digits or _ . : -"
DOTS_MESSAGE = "Must not be made of dots only: '.' and '..' name a path, not a data source."


def validate_source_id(value: str) -> str:
    """``value`` if it can name a data source in one URL path segment; else a ValidationError."""
    if not re.fullmatch(IDENTIFIER, value):
        raise serializers.ValidationError(IDENTIFIER_MESSAGE, code="invalid")
    if is_dot_segment(value):
        raise serializers.ValidationError(DOTS_MESSAGE, code="invalid")
    return value


class SyncParams(serializers.Serializer):
    """Parameters of both sync kinds; unknown keys are refused so a typo is not ignored."""

    data_source_id = serializers.CharField(
        max_length=64,
        # DRF ignores what a validator returns; the stubs ask for None.
        validators=[validate_source_id],  # type: ignore[list-item]
        help_text="The data source to copy from: 1-64 letters, digits or _ . : -, not only dots.",
    )
    interface_id = serializers.RegexField(
        r"\A[A-Za-z0-9_.:-]{0,64}\Z",
        required=False,
        allow_blank=True,
        default="",
        error_messages={"invalid": "Must be up to 64 letters, digits or _ . : -"},
        help_text="The source's interface (table, endpoint); empty for its default one.",
    )
    batch_size = serializers.IntegerField(
        min_value=1,
        max_value=MAX_BATCH,
        default=DEFAULT_BATCH,
        help_text=f"Records per page, 1-{MAX_BATCH} (default {DEFAULT_BATCH}).",
    )
    timeout = serializers.FloatField(
        min_value=0.1,
        max_value=MAX_TIMEOUT,
        default=DEFAULT_TIMEOUT,
        help_text="Seconds one attempt may take before it fails as timed out (default 300).",
    )

    def validate(self, attrs: dict) -> dict:
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                {name: ["Unknown parameter."] for name in unknown}, code="unknown"
            )
        return attrs


# Both kinds: the data source id is mirrored into the task's column, which the sync
# dialect's list and statistics filter on.
SYNC_KIND: dict[str, Any] = {
    "params": SyncParams,
    "max_attempts": 3,
    "backoff": BACKOFF,
    "platform": PLATFORM,
    "columns": ("data_source_id",),
}


@task_kind(FULL_KIND, **SYNC_KIND)
def full_sync(task, ctx):
    """Copy every record of a data source (the data sync service's task type full_sync)."""
    return run_sync(task, ctx, mode=FULL)


@task_kind(INCREMENTAL_KIND, **SYNC_KIND)
def incremental_sync(task, ctx):
    """Copy the records changed since the last successful sync (its incremental_sync)."""
    return run_sync(task, ctx, mode=INCREMENTAL)
