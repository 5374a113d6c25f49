"""The twitter-like area of the sandbox platform, played for the scrape kinds.

::

    GET /api/users/<username>                   {"data": {...profile...}}
    GET /api/users/<username>/tweets            ?include_replies=&include_retweets=
    GET /api/users/<username>/followers
    GET /api/users/<username>/following
    GET /api/search/tweets                      ?q=&lang=
    GET /api/hashtags/<tag>/tweets

Lists take ``?cursor=&count=`` and answer ``{"data": [...], "next_cursor": "..." | null}``.
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import unquote

from . import data
from .routing import PlatformError, Request, route

DEFAULT_COUNT = 20
MAX_COUNT = 100
USERNAME = re.compile(r"^[A-Za-z0-9_]{1,15}$")
# Usernames with this prefix do not exist: a deterministic way to reach the 404 path.
MISSING_PREFIX = "gone_"


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        label, offset = raw.split(":")
        if label != "offset" or int(offset) < 0:
            raise ValueError(raw)
        return int(offset)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise PlatformError(400, "Invalid cursor") from None


def page(items: list[dict], query: dict[str, str]) -> dict:
    """One cursor page of ``items``; other areas' list routes page the same way."""
    offset = decode_cursor(query.get("cursor", ""))
    try:
        count = int(query.get("count") or DEFAULT_COUNT)
    except ValueError:
        raise PlatformError(400, "count must be an integer") from None
    if not 1 <= count <= MAX_COUNT:
        raise PlatformError(400, f"count must be between 1 and {MAX_COUNT}")
    end = offset + count
    next_cursor = encode_cursor(end) if end < len(items) else None
    return {"data": items[offset:end], "next_cursor": next_cursor}


def _flag(query: dict[str, str], name: str) -> bool:
    return query.get(name, "").lower() in {"1", "true", "yes"}


def _username(raw: str) -> str:
    username = unquote(raw)
    if not USERNAME.match(username) or username.lower().startswith(MISSING_PREFIX):
        raise PlatformError(404, "User not found")
    return username


@route("GET", r"/api/users/(?P<username>[^/]+)")
def user_profile(request: Request) -> dict:
    return {"data": data.user(_username(request.params["username"]))}


@route("GET", r"/api/users/(?P<username>[^/]+)/tweets")
def user_tweets(request: Request) -> dict:
    tweets = data.user_tweets(
        _username(request.params["username"]),
        include_replies=_flag(request.query, "include_replies"),
        include_retweets=_flag(request.query, "include_retweets"),
    )
    return page(tweets, request.query)


@route("GET", r"/api/users/(?P<username>[^/]+)/(?P<relation>followers|following)")
def related_users(request: Request) -> dict:
    username = _username(request.params["username"])
    return page(data.related_users(username, request.params["relation"]), request.query)


@route("GET", r"/api/search/tweets")
def search_tweets(request: Request) -> dict:
    q = request.query.get("q", "").strip()
    if not q:
        raise PlatformError(400, "q is required")
    return page(data.search(q, lang=request.query.get("lang", "")), request.query)


@route("GET", r"/api/hashtags/(?P<tag>[^/]+)/tweets")
def hashtag_tweets(request: Request) -> dict:
    return page(data.search("#" + unquote(request.params["tag"]).lstrip("#")), request.query)
