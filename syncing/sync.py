"""The paging loop of the sync kinds: fetch a page, store it, report, check for stop; repeat.

Every stored record is one result row (``data_type`` ``sync_record``) keyed by
``<record id>@<updated_at>``, so each version of a record is stored once per task however often
an attempt is re-run. Each row's metadata carries the cursor of the page after its own and the
watermark the sync started from, written in the same transaction as the rows: a re-run attempt
continues from the newest row instead of starting over, with the same starting point.

An incremental sync starts from the watermark of the newest COMPLETED sync (full or
incremental) of the same owner, data source and interface; a full sync starts from nothing.
Either one ends with ``result["watermark"]``: the newest ``updated_at`` it copied.
"""

from __future__ import annotations

import time
from typing import Any

from django.utils import timezone

from syncing.providers import DataSourceClient, SourceTimeout
from taskcenter.errors import PermanentError
from taskcenter.kinds.results import results_model
from taskcenter.models import Status, Task

DATA_TYPE = "sync_record"
FULL = "full"
INCREMENTAL = "incremental"
# The canonical kind names; the data sync dialect calls them full_sync and incremental_sync.
FULL_KIND = "sync.full_sync"
INCREMENTAL_KIND = "sync.incremental_sync"
SYNC_KINDS = (FULL_KIND, INCREMENTAL_KIND)


def previous_watermark(task: Task) -> str | None:
    """Where an incremental sync of ``task``'s data source resumes: the last success's mark."""
    params = task.parameters
    previous = (
        Task.objects.filter(
            owner_id=task.owner_id,
            task_type__in=SYNC_KINDS,
            status=Status.COMPLETED,
            parameters__data_source_id=params["data_source_id"],
            parameters__interface_id=params.get("interface_id", ""),
        )
        .exclude(pk=task.pk)
        .order_by("-finished_at", "-id")
        .values_list("result", flat=True)
        .first()
    )
    return (previous or {}).get("watermark")


def _resume_point(task_id: int) -> tuple[int, dict | None]:
    """Rows this task stored so far and the metadata of the newest one."""
    stored = results_model()._default_manager.filter(task_id=task_id, data_type=DATA_TYPE)
    count = stored.count()
    if not count:
        return 0, None
    newest = stored.order_by("-id").values_list("metadata", "data").first()
    assert newest is not None  # the count just found rows
    metadata, data = newest
    return count, {**(metadata or {}), "last_updated_at": (data or {}).get("updated_at")}


def run_sync(task: Task, ctx: Any, *, mode: str) -> dict[str, Any]:
    """Copy the data source's records (all, or those changed since the last sync) into results."""
    params = task.parameters
    source_id = params["data_source_id"]
    interface = params.get("interface_id", "")
    batch_size = params["batch_size"]
    budget = float(params["timeout"])
    deadline = time.monotonic() + budget
    client = DataSourceClient()

    count, resumed = _resume_point(task.pk)
    if resumed is not None:
        since, cursor = resumed.get("since"), resumed.get("next_cursor")
        watermark, finished = resumed.get("last_updated_at") or since, cursor is None
    else:
        since = previous_watermark(task) if mode == INCREMENTAL else None
        cursor, watermark, finished = None, since, False
    pages, total = 0, count
    ctx.progress(0, f"{count} records copied", force=True)
    while not finished:
        ctx.checkpoint()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _out_of_time(budget, count)
        try:
            page = client.fetch_page(
                source_id,
                interface=interface,
                updated_after=since,
                cursor=cursor,
                batch_size=batch_size,
                timeout=remaining,
            )
        except SourceTimeout:
            if deadline - time.monotonic() <= 0.05:
                raise _out_of_time(budget, count) from None
            raise
        pages += 1
        metadata = {
            "data_source_id": source_id,
            "interface_id": interface,
            "since": since,
            "page_cursor": cursor,
            "next_cursor": page.next_cursor,
            "synced_at": timezone.now().isoformat(),
        }
        count += ctx.save_results(
            {
                "key": f"{record.get('id')}@{record.get('updated_at')}",
                "data_type": DATA_TYPE,
                "data": record,
                "metadata": metadata,
            }
            for record in page.records
        )
        if page.records:
            watermark = max(watermark or "", *(str(r.get("updated_at", "")) for r in page.records))
        total = max(page.total, count)
        cursor = page.next_cursor
        finished = cursor is None
        percent = 100 * count / total if total else 100
        ctx.progress(percent, f"{count}/{total} records, page {pages}")
    ctx.progress(100, f"{count}/{total} records", force=True)
    return {
        "mode": mode,
        "data_source_id": source_id,
        "interface_id": interface,
        "since": since,
        "watermark": watermark,
        "records": count,
        "pages": pages,
    }


def _out_of_time(budget: float, count: int) -> PermanentError:
    return PermanentError(
        f"Sync timed out: not finished within its timeout of {budget:g} s ({count} records copied)"
    )
