"""The paging loop shared by the scrape kinds: fetch, store, report, resume.

Resuming: every stored row's metadata carries the platform cursor of the page after its own
(``next_cursor``), written in the same transaction as the rows. A task started again (after a
stop, a lost worker or a retry) reads the newest row's cursor and continues from there; any
overlap is dropped by ``save_results``' per-task key dedupe. No extra write is needed, so
nothing can record a cursor for rows that were rolled back.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone

from .models import ScrapeResult
from .providers import USER_INFO, get_provider

PAGE_SIZE = 100  # the sandbox's (and twitter's) maximum page size
# A platform that keeps answering pages with nothing new (all already stored, or empty) would
# otherwise keep a worker busy until the limit; give up after this many in a row.
MAX_FRUITLESS_PAGES = 5


def searchable(item: dict) -> dict:
    """``item`` with its author's username also at the top level.

    Platforms nest a post's author (``{"user": {"username": ...}}``) while profiles carry
    ``username`` at the top; the service's search examples (``username:elonmusk,text:tesla``)
    query every row by a top-level ``username``. The nested copy stays, so ``user.username``
    and exports keep the platform's own shape.
    """
    author = item.get("user")
    if "username" in item or not isinstance(author, dict) or "username" not in author:
        return item
    return {**item, "username": author["username"]}


def _resume_point(task_id: int) -> tuple[int, str | None, bool]:
    """Rows stored so far, the cursor to continue from, and whether the platform ran out."""
    stored = ScrapeResult.objects.filter(task_id=task_id)
    count = stored.count()
    if not count:
        return 0, None, False
    metadata = stored.order_by("-id").values_list("metadata", flat=True).first() or {}
    cursor = metadata.get("next_cursor")
    return count, cursor, cursor is None


def scrape(task, ctx, *, source_kind: str, data_type: str) -> dict[str, Any]:
    """Collect up to ``limit`` items of ``source_kind`` page by page; return a summary."""
    config = settings.SCRAPING
    # One task per account at a time: a busy account ends this attempt and the handler is
    # called again later, so nothing below runs while another task uses the account.
    ctx.hold_account(
        task.account_id, wait=config["ACCOUNT_WAIT"], cooldown=config["ACCOUNT_COOLDOWN"]
    )
    params = task.parameters
    limit = 1 if source_kind == USER_INFO else params["limit"]
    provider = get_provider()
    count, cursor, exhausted = _resume_point(task.pk)
    pages = fruitless = 0
    ctx.progress(100 * count / limit, f"{count}/{limit} items", force=True)
    while count < limit and not exhausted and fruitless < MAX_FRUITLESS_PAGES:
        ctx.checkpoint()
        page = provider.fetch_page(
            source_kind,
            params,
            cursor=cursor,
            count=min(PAGE_SIZE, limit - count),
            account_id=task.account_id,
            proxy_id=task.proxy_id,
        )
        pages += 1
        metadata = {
            "source": provider.source,
            "scraped_at": timezone.now().isoformat(),
            "page_cursor": cursor,
            "next_cursor": page.next_cursor,
        }
        written = ctx.save_results(
            {
                "key": item["id"],
                "data_type": data_type,
                "data": searchable(item),
                "metadata": metadata,
            }
            for item in page.items[: limit - count]
        )
        count += written
        fruitless = 0 if written else fruitless + 1
        cursor = page.next_cursor
        exhausted = cursor is None
        ctx.progress(100 * count / limit, f"{count}/{limit} items")
    ctx.progress(100, f"{count}/{limit} items", force=True)
    return {"items": count, "pages": pages}
