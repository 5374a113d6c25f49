"""The six scrape kinds end to end against the sandbox platform over real HTTP, in-process."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from scraping import providers
from scraping import scrape as scrape_module
from scraping.models import ScrapeResult
from taskcenter import lifecycle
from taskcenter.execution.runner import run_attempt
from taskcenter.models import ExecutionStatus, Status, Task


@pytest.fixture
def platform(platform, settings):
    """The sandbox platform, and the scraping settings pointing at it."""
    settings.SCRAPING = {**settings.SCRAPING, "BASE_URL": platform.url, "TOKEN": "sandbox-token"}
    return platform


def run(task: Task) -> Task:
    run_attempt(task.pk, worker_id="test")
    task.refresh_from_db()
    return task


def scrape(make_task, task_type: str, parameters: dict, **fields) -> Task:
    return run(make_task(task_type, parameters, start=True, **fields))


def keys(task: Task) -> list[str]:
    return list(task.results.values_list("item_key", flat=True))


@pytest.mark.parametrize(
    ("task_type", "parameters", "data_type", "expected"),
    [
        ("USER_TWEETS", {"username": "elonmusk", "limit": 120}, "tweet", 120),
        ("USER_INFO", {"username": "@elonmusk"}, "user", 1),
        ("KEYWORD_SEARCH", {"query": "tesla", "limit": 30, "lang": "en"}, "tweet", 30),
        ("HASHTAG_SEARCH", {"hashtag": "#ai", "limit": 25}, "tweet", 25),
        ("USER_FOLLOWERS", {"username": "jack", "limit": 40}, "user", 40),
        ("USER_FOLLOWING", {"username": "jack", "limit": 10}, "user", 10),
    ],
)
def test_each_kind_collects_its_limit_of_distinct_items(
    make_task, platform, task_type, parameters, data_type, expected
):
    task = scrape(make_task, task_type, parameters, account_id="acc-1", proxy_id="proxy-1")

    assert task.status == Status.COMPLETED, task.error_message
    assert task.platform == "twitter"
    assert task.progress == 100
    assert task.result["items"] == expected
    results = task.results.all()
    assert results.count() == expected == len(set(keys(task)))
    assert {r.data_type for r in results} == {data_type}
    first = results.first()
    assert first.item_key == first.data["id"]
    assert first.metadata["source"] == "sandbox"
    assert first.metadata["scraped_at"]
    assert task.executions.get().result_count == expected
    assert {(r["account_id"], r["proxy_id"]) for r in platform.requests} == {("acc-1", "proxy-1")}


def test_user_tweets_pages_at_most_100_and_the_data_matches_the_query(make_task, platform):
    task = scrape(make_task, "USER_TWEETS", {"username": "elonmusk", "limit": 150})

    assert task.result == {"items": 150, "pages": 2}
    assert [r["query"]["count"] for r in platform.requests] == ["100", "50"]
    texts = [r.data["text"] for r in task.results.all()]
    assert any("Tesla" in text for text in texts)
    assert all(r.data["user"]["username"] == "elonmusk" for r in task.results.all())
    assert all(r.data["username"] == "elonmusk" for r in task.results.all())


def test_limit_beyond_what_the_platform_has_stops_at_the_last_page(make_task, platform):
    task = scrape(make_task, "USER_FOLLOWING", {"username": "jack", "limit": 10_000})

    assert task.status == Status.COMPLETED
    assert task.result["items"] == task.results.count() < 10_000
    assert platform.requests[-1]["status"] == 200


def test_rate_limit_is_retried_after_the_platforms_retry_after(make_task, platform):
    platform.control(rate_limit_next=1, retry_after=40)
    before = timezone.now()

    task = scrape(make_task, "USER_TWEETS", {"username": "elonmusk", "limit": 20})

    assert task.status == Status.QUEUED
    waited = task.run_after - before
    assert timedelta(seconds=39) <= waited <= timedelta(seconds=42)
    assert task.error_message == "Rate limit exceeded"
    Task.objects.filter(pk=task.pk).update(run_after=None)
    task = run(task)
    assert task.status == Status.COMPLETED
    assert task.results.count() == 20
    assert list(task.executions.order_by("attempt").values_list("status", flat=True)) == [
        ExecutionStatus.FAILED,
        ExecutionStatus.COMPLETED,
    ]


def test_platform_outage_503_is_retryable(make_task, platform):
    platform.control(fail_next=1)

    task = scrape(make_task, "HASHTAG_SEARCH", {"hashtag": "ai", "limit": 5})

    assert task.status == Status.QUEUED
    assert task.run_after > timezone.now()
    assert task.error_message == "Service temporarily unavailable"
    Task.objects.filter(pk=task.pk).update(run_after=None)
    assert run(task).status == Status.COMPLETED


def test_suspended_account_fails_at_once_with_the_platforms_message(make_task, platform):
    platform.control(suspend_account="account-123")

    task = scrape(make_task, "USER_TWEETS", {"username": "elonmusk"}, account_id="account-123")

    assert task.status == Status.FAILED
    assert task.error_message == "Account suspended"
    assert task.executions.count() == 1
    assert not task.results.exists()


def test_wrong_token_fails_permanently(make_task, platform, settings):
    settings.SCRAPING = {**settings.SCRAPING, "TOKEN": "wrong"}

    task = scrape(make_task, "USER_INFO", {"username": "elonmusk"})

    assert task.status == Status.FAILED
    assert task.error_message == "Invalid or missing token"
    assert task.executions.count() == 1


def test_unknown_user_fails_permanently(make_task, platform):
    task = scrape(make_task, "USER_FOLLOWERS", {"username": "gone_user"})

    assert (task.status, task.error_message) == (Status.FAILED, "User not found")


def test_unreachable_platform_is_retryable(make_task, platform, settings):
    settings.SCRAPING = {**settings.SCRAPING, "BASE_URL": "http://127.0.0.1:9", "TIMEOUT": 2}

    task = scrape(make_task, "USER_INFO", {"username": "elonmusk"})

    assert task.status == Status.QUEUED
    assert task.error_message.startswith("Cannot reach the platform")


@pytest.mark.parametrize(
    ("task_type", "parameters", "field"),
    [
        ("USER_TWEETS", {"username": "has space", "limit": 5}, "username"),
        ("USER_TWEETS", {"username": "a" * 16}, "username"),
        ("USER_TWEETS", {"username": "elonmusk", "limit": 0}, "limit"),
        ("USER_FOLLOWERS", {"username": "elonmusk", "limit": 10_001}, "limit"),
        ("USER_INFO", {}, "username"),
        ("KEYWORD_SEARCH", {"query": ""}, "query"),
        ("KEYWORD_SEARCH", {"query": "x", "lang": "english"}, "lang"),
        ("HASHTAG_SEARCH", {"hashtag": "no-dash"}, "hashtag"),
        (
            "USER_TWEETS",
            {"username": "elonmusk", "include_replies": "maybe"},
            "include_replies",
        ),
    ],
)
def test_bad_parameters_are_refused_naming_the_field(make_task, task_type, parameters, field):
    with pytest.raises(ValidationError) as refused:
        make_task(task_type, parameters)

    assert field in refused.value.detail["parameters"]
    assert not Task.objects.exists()


def test_defaults_are_filled_in(make_task):
    task = make_task("USER_TWEETS", {"username": "elonmusk"})

    assert task.parameters == {
        "username": "elonmusk",
        "limit": 50,
        "include_replies": False,
        "include_retweets": False,
    }


class StopOnThirdPage:
    """Wraps the real provider; stops the task while the third page is in flight."""

    def __init__(self, task_id: int) -> None:
        self.task_id = task_id
        self.calls = 0
        self.real = providers.get_provider()
        self.source = self.real.source

    def fetch_page(self, *args, **kwargs):
        self.calls += 1
        if self.calls == 3:
            lifecycle.stop_task(self.task_id)
        return self.real.fetch_page(*args, **kwargs)


def test_stopped_task_started_again_resumes_from_its_cursor_without_duplicates(
    make_task, platform, monkeypatch
):
    monkeypatch.setattr(scrape_module, "PAGE_SIZE", 20)
    task = make_task("USER_TWEETS", {"username": "elonmusk", "limit": 70}, start=True)
    monkeypatch.setattr(scrape_module, "get_provider", lambda: StopOnThirdPage(task.pk))

    assert run(task).status == Status.STOPPED
    assert task.results.count() == 40  # the third page was fetched but refused at save

    lifecycle.start_task(task.pk)
    task = run(task)

    assert task.status == Status.COMPLETED
    assert task.results.count() == 70 == len(set(keys(task)))
    assert task.result == {"items": 70, "pages": 2}
    cursors = [r["query"].get("cursor") for r in platform.requests]
    # Attempt 2 asked for the third page again, not the first: it resumed from the cursor.
    assert cursors[3] == cursors[2] is not None
    assert len(cursors) == 5


def test_task_that_already_holds_its_limit_completes_without_calling_the_platform(
    make_task, platform
):
    task = scrape(make_task, "USER_FOLLOWERS", {"username": "jack", "limit": 10})
    # As if an attempt stored everything and its worker died before completing: the rows,
    # not the cursor they carry, decide that nothing is left to fetch.
    ScrapeResult.objects.filter(task=task).update(metadata={"next_cursor": "more"})
    before = len(platform.requests)

    clone = make_task("USER_FOLLOWERS", {"username": "jack", "limit": 10}, start=True)
    ScrapeResult.objects.filter(task=task).update(task=clone)
    clone = run(clone)

    assert clone.status == Status.COMPLETED
    assert clone.result == {"items": 10, "pages": 0}
    assert len(platform.requests) == before
