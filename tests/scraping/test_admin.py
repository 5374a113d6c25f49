"""Scrape tasks and their results in the admin: filters, search, read-only rows, exports."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from scraping.admin import ScrapeResultAdmin
from scraping.models import ScrapeResult
from taskcenter.admin.dashboard import CappedCountPaginator
from taskcenter.models import Task

RESULTS = reverse("admin:scraping_scraperesult_changelist")
TASKS = reverse("admin:taskcenter_task_changelist")


def add_rows(task: Task, datas: list[dict], data_type: str = "tweet") -> list[ScrapeResult]:
    ScrapeResult.objects.bulk_create(
        ScrapeResult(task=task, data_type=data_type, data=data, metadata={"source": "t"})
        for data in datas
    )
    return list(ScrapeResult.objects.filter(task=task).order_by("id"))


def streamed(response) -> str:
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode()


@pytest.fixture
def two_tasks(make_task):
    tweets = make_task("USER_TWEETS", {"username": "elonmusk"}, name="tweets")
    users = make_task("USER_FOLLOWERS", {"username": "jack"}, name="followers")
    add_rows(tweets, [{"text": "Tesla is the future", "username": "elonmusk"}, {"text": "=1+1"}])
    add_rows(users, [{"username": "follower_1", "name": "F One"}], data_type="user")
    return tweets, users


def test_task_list_filters_scrape_tasks_by_xget_task_type(admin_client, two_tasks, make_task):
    tweets, _ = two_tasks
    make_task("demo.noop")

    response = admin_client.get(TASKS, {"task_type": "USER_TWEETS"})

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [tweets]
    # The sidebar offers every type in use, the XGet scraper API's names among them.
    choices = [
        choice["display"]
        for spec in response.context["cl"].filter_specs
        if spec.title == "type"
        for choice in spec.choices(response.context["cl"])
    ]
    assert {"USER_TWEETS", "USER_FOLLOWERS", "demo.noop"} <= set(choices)


def test_result_list_shows_rows_with_their_task_and_a_summary(admin_client, two_tasks):
    tweets, users = two_tasks

    response = admin_client.get(RESULTS)

    assert response.status_code == 200
    rows = list(response.context["cl"].result_list)
    assert len(rows) == 3
    page = response.content.decode()
    assert "Tesla is the future" in page
    assert f"#{tweets.pk} USER_TWEETS" in page
    assert f"#{users.pk} USER_FOLLOWERS" in page
    assert reverse("admin:taskcenter_task_change", args=[tweets.pk]) in page


def test_result_list_filters_by_data_type_and_searches_by_type_or_task(admin_client, two_tasks):
    tweets, users = two_tasks

    def ids(**params) -> set[int]:
        response = admin_client.get(RESULTS, params)
        assert response.status_code == 200
        return {row.task_id for row in response.context["cl"].result_list}

    assert ids(data_type="user") == {users.pk}
    assert ids(data_type="tweet") == {tweets.pk}
    assert ids(q="user") == {users.pk}
    assert ids(q=str(tweets.pk)) == {tweets.pk}
    assert ids(q="not-a-task-id") == set()
    filters = admin_client.get(RESULTS).context["cl"].filter_specs
    assert [choice[0] for choice in filters[0].lookup_choices] == ["tweet", "user"]


def test_result_list_does_not_count_the_whole_table_or_query_per_row(admin_client, make_task):
    task = make_task("USER_TWEETS", {"username": "elonmusk"})
    add_rows(task, [{"text": f"t{n}"} for n in range(5)])
    with CaptureQueriesContext(connection) as few:
        admin_client.get(RESULTS)
    add_rows(task, [{"text": f"t{n}"} for n in range(40)])
    with CaptureQueriesContext(connection) as many:
        response = admin_client.get(RESULTS)

    assert len(many) == len(few)  # list_select_related: no query per row for its task
    assert isinstance(response.context["cl"].paginator, CappedCountPaginator)
    assert ScrapeResultAdmin.show_full_result_count is False
    counts = [q["sql"] for q in many.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts
    assert all("LIMIT" in sql.upper() for sql in counts), counts


def test_results_are_read_only(admin_client, two_tasks):
    tweets, _ = two_tasks
    row = tweets.results.order_by("id").first()
    change = reverse("admin:scraping_scraperesult_change", args=[row.pk])

    assert admin_client.get(reverse("admin:scraping_scraperesult_add")).status_code == 403
    page = admin_client.get(change)
    assert page.status_code == 200
    assert "Tesla is the future" in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    posted = admin_client.post(change, {"data_type": "hacked", "data": "{}"})
    assert posted.status_code == 403
    deleted = admin_client.post(
        reverse("admin:scraping_scraperesult_delete", args=[row.pk]), {"post": "yes"}
    )
    assert deleted.status_code == 403
    actions = admin_client.get(RESULTS).context["action_form"].fields["action"].choices
    assert "delete_selected" not in {name for name, _ in actions}
    bulk = admin_client.post(
        RESULTS, {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"}
    )
    assert bulk.status_code in (200, 302)
    row.refresh_from_db()
    assert row.data_type == "tweet"
    assert ScrapeResult.objects.count() == 3


def test_export_action_streams_the_selected_results_as_escaped_csv(admin_client, two_tasks):
    tweets, users = two_tasks
    chosen = [*tweets.results.order_by("id"), *users.results.all()]

    response = admin_client.post(
        RESULTS, {"action": "export_csv", "_selected_action": [r.pk for r in chosen[1:]]}
    )

    assert response["Content-Type"] == "text/csv"
    assert response["Content-Disposition"] == "attachment; filename=scrape_results.csv"
    text = streamed(response)
    assert text.splitlines()[0] == "id,task_id,data.name,data.text,data.username,created_at"
    table = list(csv.DictReader(io.StringIO(text)))
    assert [int(row["id"]) for row in table] == [r.pk for r in chosen[1:]]
    assert [int(row["task_id"]) for row in table] == [tweets.pk, users.pk]
    assert table[0]["data.text"] == "'=1+1"  # the API export's escaping
    assert table[1]["data.name"] == "F One"


def test_export_action_as_json_carries_the_task(admin_client, two_tasks):
    tweets, _ = two_tasks
    rows = list(tweets.results.order_by("id"))

    response = admin_client.post(
        RESULTS, {"action": "export_json", "_selected_action": [r.pk for r in rows]}
    )

    document = json.loads(streamed(response))
    assert document["total"] == 2
    assert [(item["id"], item["task_id"]) for item in document["data"]] == [
        (rows[0].pk, tweets.pk),
        (rows[1].pk, tweets.pk),
    ]
    assert document["data"][0]["data"] == {"text": "Tesla is the future", "username": "elonmusk"}


def test_task_admin_exports_the_results_of_the_selected_tasks(admin_client, two_tasks):
    tweets, users = two_tasks

    response = admin_client.post(
        TASKS, {"action": "export_task_results_csv", "_selected_action": [users.pk]}
    )

    table = list(csv.DictReader(io.StringIO(streamed(response))))
    assert [(row["task_id"], row["data.username"]) for row in table] == [
        (str(users.pk), "follower_1")
    ]
    assert Task.objects.get(pk=tweets.pk).status == "PENDING"  # exporting changes nothing
