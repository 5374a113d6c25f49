"""The trigram index that serves result search on SQLite (see scraping/search_index.py)."""

from django.db import migrations


def create(apps, schema_editor):
    from scraping.search_index import ensure_search_index

    ensure_search_index(schema_editor.connection)


def drop(apps, schema_editor):
    from scraping.search_index import drop_search_index

    drop_search_index(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("scraping", "0002_seed_type_names")]

    operations = [migrations.RunPython(create, drop)]
