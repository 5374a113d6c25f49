"""Deterministic fake platform data: every id, text and count is derived from a hash of the
username or query, so the same request always returns the same page on any machine.

Lists are addressed by offset; the server turns offsets into opaque cursors.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

# Every generated list has at least this many entries, so tests can ask for a limit up to it
# and know the platform has that many.
MIN_LIST = 150
EPOCH = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)

WORDS = [
    "launch", "update", "thread", "today", "shipping", "review", "numbers", "roadmap", "demo",
    "team", "release", "question", "weekend", "record", "prototype", "feedback",
]  # fmt: skip
TOPICS = ["coffee", "python", "football", "music", "travel", "design", "startups", "science"]
# Seeded personas: the demo and the XGet scraper API's examples search for these.
PERSONAS = {
    "elonmusk": {"name": "Elon Musk", "topics": ["Tesla", "SpaceX", "Starship", "Neuralink"]},
}
LANGS = ["en", "en", "en", "es", "fr", "de", "ja"]


def digest(*parts: object) -> int:
    """A stable 64-bit number for ``parts`` (Python's ``hash()`` is salted per process)."""
    raw = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(raw[:8], "big")


def _pick(options: list, *parts: object):
    return options[digest(*parts) % len(options)]


def _list_size(*parts: object) -> int:
    return MIN_LIST + digest("size", *parts) % 350


def _timeline_size(key: str) -> int:
    # Twice the minimum: about a third of a timeline is replies and retweets, filtered by default.
    return 2 * _list_size("tweets", key)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def user(username: str) -> dict:
    """The profile of ``username`` (any valid username exists)."""
    key = username.lower()
    persona = PERSONAS.get(key, {})
    return {
        "id": str(10**9 + digest("user", key) % 10**9),
        "username": username,
        "name": persona.get("name") or username.replace("_", " ").title(),
        "description": f"Posts about {_pick(TOPICS, 'bio', key)} and {_pick(WORDS, 'bio2', key)}s",
        "followers_count": _list_size("followers", key),
        "following_count": _list_size("following", key),
        "tweet_count": _timeline_size(key),
        "verified": key in PERSONAS or digest("verified", key) % 10 == 0,
        "created_at": _iso(EPOCH - timedelta(days=100 + digest("joined", key) % 3000)),
    }


def _tweet(author: str, index: int, text: str, *, lang: str, kind: str) -> dict:
    key = author.lower()
    profile = user(author)
    seed = digest("tweet", key, index, text)
    return {
        # Unique per author and position; stable across runs.
        "id": f"{profile['id']}{index:06d}",
        "text": text,
        "user": {"id": profile["id"], "username": author, "name": profile["name"]},
        "created_at": _iso(EPOCH - timedelta(minutes=37 * index)),
        "lang": lang,
        "is_reply": kind == "reply",
        "is_retweet": kind == "retweet",
        "like_count": seed % 5000,
        "retweet_count": seed % 700,
        "reply_count": seed % 90,
    }


def user_tweets(username: str, *, include_replies: bool, include_retweets: bool) -> list[dict]:
    """The timeline of ``username``, newest first; replies and retweets only when asked."""
    key = username.lower()
    topics = PERSONAS.get(key, {}).get("topics") or [_pick(TOPICS, "topic", key)]
    tweets = []
    for index in range(_timeline_size(key)):
        kind = "reply" if index % 7 == 3 else "retweet" if index % 5 == 4 else "tweet"
        if (kind == "reply" and not include_replies) or (
            kind == "retweet" and not include_retweets
        ):
            continue
        topic = topics[index % len(topics)]
        word = _pick(WORDS, "word", key, index)
        text = f"{topic} {word} #{index}"
        if kind == "reply":
            text = f"@{_follower_name('reply', key, index)} {text}"
        elif kind == "retweet":
            text = f"RT {text}"
        tweets.append(_tweet(username, index, text, lang="en", kind=kind))
    return tweets


def search(query: str, *, lang: str = "") -> list[dict]:
    """Tweets from many authors that contain ``query`` (a hashtag search passes ``#tag``)."""
    key = query.lower()
    results = []
    for index in range(_list_size("search", key)):
        author = _follower_name("author", key, index)
        word = _pick(WORDS, "search", key, index)
        tweet_lang = lang or _pick(LANGS, "lang", key, index)
        results.append(
            _tweet(author, index, f"{word}: {query} {index}", lang=tweet_lang, kind="tweet")
        )
    return results


def _follower_name(relation: str, key: str, index: int) -> str:
    # Always a valid username: letters, digits and "_", at most 15 characters.
    return f"{_pick(TOPICS, relation, key, index)[:6]}_{digest(relation, key, index) % 10**7}"


def related_users(username: str, relation: str) -> list[dict]:
    """The followers or the followed accounts (``relation``) of ``username``."""
    key = username.lower()
    return [
        user(_follower_name(relation, key, index)) for index in range(_list_size(relation, key))
    ]
