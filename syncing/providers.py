"""The HTTP client the sync kinds read a data source with (``settings.SYNCING``).

It speaks the data-source API the sandbox platform plays (``sandbox/datasource.py``): keyset
pages of records in ``(updated_at, id)`` order. Errors that may pass (timeouts, 429, 5xx) raise
``RetryableError``; the rest (bad token, unknown source, bad request) ``PermanentError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from django.conf import settings

from taskcenter.errors import PermanentError, RetryableError
from taskcenter.kinds import platform_http


@dataclass(frozen=True)
class SourcePage:
    records: list[dict]
    next_cursor: str | None
    total: int
    watermark: str | None


class SourceTimeout(RetryableError):
    """One page request took longer than it was allowed."""


def is_dot_segment(source_id: str) -> bool:
    """True for ids a URL would read as a path step (``.``, ``..``) rather than a name.

    Percent-encoding cannot help: a dot is unreserved, so every URL library (requests and
    urllib3 included) resolves ``/api/datasources/../records`` to ``/api/records``. Ids of
    dots only are refused outright; ``...`` is no dot segment but no data source's name either.
    """
    return not source_id.strip(".")


def records_path(source_id: str) -> str:
    """The records path of ``source_id``, the id held inside its one path segment.

    The sync kinds validate ids when a task is created; this checks again because a task
    stored before that check (or written around it) must not send the service token elsewhere.
    """
    if is_dot_segment(source_id):
        raise PermanentError(
            f"Refusing data source id {source_id!r}: it would leave its URL path segment"
        )
    return f"/api/datasources/{quote(source_id, safe='')}/records"


class DataSourceClient:
    """One client per attempt: it keeps one HTTP session (keep-alive) for all pages."""

    def __init__(self) -> None:
        self.client = platform_http.PlatformClient(
            settings.SYNCING,
            timeout_key="PAGE_TIMEOUT",
            party="data source",
            timeout_error=SourceTimeout,
        )

    def fetch_page(
        self,
        source_id: str,
        *,
        interface: str = "",
        updated_after: str | None = None,
        cursor: str | None = None,
        batch_size: int,
        timeout: float | None = None,
    ) -> SourcePage:
        """One page of records; ``timeout`` caps this request below the configured one."""
        query: dict[str, Any] = {"batch_size": batch_size}
        if interface:
            query["interface"] = interface
        if updated_after:
            query["updated_after"] = updated_after
        if cursor:
            query["cursor"] = cursor
        configured = self.client.timeout
        limit = configured if timeout is None else min(configured, timeout)
        response, body = self.client.call(
            "GET", records_path(source_id), params=query, timeout=max(limit, 0.001)
        )
        platform_http.raise_for_status(response, body, party="data source")
        records = body.get("data")
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise RetryableError("Data source returned a page without a list of records")
        total = body.get("total")
        return SourcePage(
            records=records,
            next_cursor=body.get("next_cursor") or None,
            total=total if isinstance(total, int) else len(records),
            watermark=body.get("watermark") or None,
        )
