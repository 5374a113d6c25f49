"""Providers: how scrape kinds fetch one page of a platform's data.

A provider is chosen by ``settings.SCRAPING["PROVIDER"]`` (a dotted path) and answers
``fetch_page(kind, params, *, cursor, account_id, proxy_id) -> Page``, raising
``RetryableError`` for what may pass (429, 5xx, timeouts) and ``PermanentError`` for what
will not (bad token, suspended account, unknown user).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.utils.module_loading import import_string

from taskcenter.errors import PermanentError, RetryableError
from taskcenter.kinds import platform_http

# The XGet scraper API's six task types, as providers know them.
USER_TWEETS = "USER_TWEETS"
USER_INFO = "USER_INFO"
KEYWORD_SEARCH = "KEYWORD_SEARCH"
HASHTAG_SEARCH = "HASHTAG_SEARCH"
USER_FOLLOWERS = "USER_FOLLOWERS"
USER_FOLLOWING = "USER_FOLLOWING"


@dataclass(frozen=True)
class Page:
    items: list[dict] = field(default_factory=list)
    next_cursor: str | None = None


class Provider:
    """The interface; subclasses talk to one platform API."""

    source = "unknown"

    def fetch_page(
        self,
        kind: str,
        params: dict[str, Any],
        *,
        cursor: str | None,
        count: int,
        account_id: str = "",
        proxy_id: str = "",
    ) -> Page:
        raise NotImplementedError


def get_provider() -> Provider:
    """A new instance of the configured provider (one per attempt: it may hold a session)."""
    return import_string(settings.SCRAPING["PROVIDER"])()


def _segment(value: str) -> str:
    # Everything user-given goes into one escaped path segment, so no parameter can steer the
    # request to another path, and never to another host.
    return quote(value, safe="")


def _endpoint(kind: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The API path and query for ``kind`` (sandbox API; see sandbox/platform.py)."""
    if kind == USER_INFO:
        return f"/api/users/{_segment(params['username'])}", {}
    if kind == USER_TWEETS:
        query = {
            "include_replies": str(params.get("include_replies", False)).lower(),
            "include_retweets": str(params.get("include_retweets", False)).lower(),
        }
        return f"/api/users/{_segment(params['username'])}/tweets", query
    if kind in (USER_FOLLOWERS, USER_FOLLOWING):
        relation = "followers" if kind == USER_FOLLOWERS else "following"
        return f"/api/users/{_segment(params['username'])}/{relation}", {}
    if kind == KEYWORD_SEARCH:
        query = {"q": params["query"]}
        if params.get("lang"):
            query["lang"] = params["lang"]
        return "/api/search/tweets", query
    if kind == HASHTAG_SEARCH:
        return f"/api/hashtags/{_segment(params['hashtag'])}/tweets", {}
    raise PermanentError(f"Provider does not support {kind!r}")


class HttpProvider(Provider):
    """Speaks the platform's JSON API at ``SCRAPING["BASE_URL"]`` with a bearer token."""

    def __init__(self) -> None:
        self.client = platform_http.PlatformClient(settings.SCRAPING)
        self.source = settings.SCRAPING.get("SOURCE", "sandbox")

    def fetch_page(
        self,
        kind: str,
        params: dict[str, Any],
        *,
        cursor: str | None,
        count: int,
        account_id: str = "",
        proxy_id: str = "",
    ) -> Page:
        path, query = _endpoint(kind, params)
        if kind != USER_INFO:
            query["count"] = count
            if cursor:
                query["cursor"] = cursor
        headers = {}
        if account_id:
            headers["X-Account-Id"] = account_id
        if proxy_id:
            headers["X-Proxy-Id"] = proxy_id
        response, body = self.client.call("GET", path, params=query, headers=headers)
        platform_http.raise_for_status(response, body)
        payload = body.get("data")
        if kind == USER_INFO:
            return Page(items=[payload] if isinstance(payload, dict) else [], next_cursor=None)
        if not isinstance(payload, list):
            raise RetryableError("Platform returned a page without a data list")
        return Page(items=payload, next_cursor=body.get("next_cursor") or None)
