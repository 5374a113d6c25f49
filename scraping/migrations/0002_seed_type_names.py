"""Scrape tasks created before the kinds took the XGet scraper API's type names get the new names."""

from django.db import migrations

RENAMES = {
    "scrape.user_tweets": "USER_TWEETS",
    "scrape.user_info": "USER_INFO",
    "scrape.keyword_search": "KEYWORD_SEARCH",
    "scrape.hashtag_search": "HASHTAG_SEARCH",
    "scrape.user_followers": "USER_FOLLOWERS",
    "scrape.user_following": "USER_FOLLOWING",
}


def rename(apps, mapping: dict[str, str]) -> None:
    # A type name is not a status: a plain UPDATE, one per kind, is all it takes.
    task = apps.get_model("taskcenter", "Task")
    for old, new in mapping.items():
        task.objects.filter(task_type=old).update(task_type=new)


def forwards(apps, schema_editor):
    rename(apps, RENAMES)


def backwards(apps, schema_editor):
    rename(apps, {new: old for old, new in RENAMES.items()})


class Migration(migrations.Migration):
    dependencies = [
        ("scraping", "0001_initial"),
        ("taskcenter", "0001_initial"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=True)]
