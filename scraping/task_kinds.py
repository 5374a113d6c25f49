"""The six scrape kinds of the XGet scraper API, on the provider chosen in ``settings.SCRAPING``.

Registered under the XGet scraper API's own type names (``USER_TWEETS``...), so a client
creates, reads back and filters tasks by the word it already uses. These six are the only
kinds not named ``area.verb``: one name per kind means no alias table to keep in step with
list filters, statistics and the admin.
"""

from __future__ import annotations

from rest_framework import serializers

from taskcenter.kinds import RetryPolicy, task_kind

from . import providers
from .scrape import scrape

PLATFORM = "twitter"
# Platform outages and rate limits pass; give them minutes, not seconds (429 sets its own delay).
BACKOFF = RetryPolicy(base_delay=5.0, factor=3.0, max_delay=300.0)
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 50  # the XGet scraper API's own example


def _limit_field() -> serializers.IntegerField:
    return serializers.IntegerField(
        min_value=1,
        max_value=MAX_LIMIT,
        default=DEFAULT_LIMIT,
        help_text=f"Items to collect, 1-{MAX_LIMIT} (default {DEFAULT_LIMIT}); fewer if the "
        "platform has fewer.",
    )


class UsernameField(serializers.RegexField):
    """A platform username: 1-15 letters, digits or underscores; a leading "@" is dropped."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("help_text", "Username without '@': 1-15 of A-Z, a-z, 0-9 and _.")
        super().__init__(
            r"^[A-Za-z0-9_]{1,15}$",
            error_messages={"invalid": "Must be 1-15 letters, digits or underscores."},
            **kwargs,
        )

    def to_internal_value(self, data):
        if isinstance(data, str):
            data = data.strip().removeprefix("@")
        return super().to_internal_value(data)


class UserTweetsParams(serializers.Serializer):
    username = UsernameField()
    limit = _limit_field()
    include_replies = serializers.BooleanField(default=False)
    include_retweets = serializers.BooleanField(default=False)


class UserInfoParams(serializers.Serializer):
    username = UsernameField()


class KeywordSearchParams(serializers.Serializer):
    query = serializers.CharField(max_length=500, help_text="Words to search for.")
    limit = _limit_field()
    lang = serializers.RegexField(
        r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$",
        required=False,
        allow_blank=True,
        default="",
        error_messages={"invalid": "Must be a language code such as 'en' or 'pt-BR'."},
        help_text="Only tweets in this language (ISO 639-1 code); empty for any.",
    )


class HashtagSearchParams(serializers.Serializer):
    hashtag = serializers.RegexField(
        r"^\w{1,100}$",
        error_messages={"invalid": "Must be 1-100 letters, digits or underscores."},
        help_text="The hashtag, with or without '#'.",
    )
    limit = _limit_field()

    def to_internal_value(self, data):
        if isinstance(data, dict) and isinstance(data.get("hashtag"), str):
            data = {**data, "hashtag": data["hashtag"].strip().removeprefix("#")}
        return super().to_internal_value(data)


class UserRelationParams(serializers.Serializer):
    username = UsernameField()
    limit = _limit_field()


def _scrape_kind(name: str, *, params, data_type: str, doc: str):
    def handler(task, ctx):
        return scrape(task, ctx, source_kind=name, data_type=data_type)

    handler.__doc__ = doc
    handler.__name__ = handler.__qualname__ = name.lower()
    return task_kind(name, params=params, max_attempts=3, backoff=BACKOFF, platform=PLATFORM)(
        handler
    )


user_tweets = _scrape_kind(
    providers.USER_TWEETS,
    params=UserTweetsParams,
    data_type="tweet",
    doc="Collect a user's latest tweets.",
)
user_info = _scrape_kind(
    providers.USER_INFO,
    params=UserInfoParams,
    data_type="user",
    doc="Collect a user's profile.",
)
keyword_search = _scrape_kind(
    providers.KEYWORD_SEARCH,
    params=KeywordSearchParams,
    data_type="tweet",
    doc="Collect tweets matching a search query.",
)
hashtag_search = _scrape_kind(
    providers.HASHTAG_SEARCH,
    params=HashtagSearchParams,
    data_type="tweet",
    doc="Collect tweets carrying a hashtag.",
)
user_followers = _scrape_kind(
    providers.USER_FOLLOWERS,
    params=UserRelationParams,
    data_type="user",
    doc="Collect the accounts that follow a user.",
)
user_following = _scrape_kind(
    providers.USER_FOLLOWING,
    params=UserRelationParams,
    data_type="user",
    doc="Collect the accounts a user follows.",
)
