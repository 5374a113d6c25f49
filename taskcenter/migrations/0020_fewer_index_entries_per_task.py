"""Fewer index entries per status change on PostgreSQL. ``db_index=True`` on a ``CharField``
made two indexes there: the column's, and a ``varchar_pattern_ops`` twin for ``LIKE 'prefix%'``
searches, which nothing here makes. A task's row is rewritten at each status change and every
index gets an entry each time, so the eight twins cost a no-op task 14 % of its WAL. The
columns' own indexes move to ``Meta.indexes`` (renamed in place: no rebuild on PostgreSQL) and
the twins are dropped. An execution's task loses its single-column index too: the unique
(task, attempt) index starts with it. And an event's user is indexed only where set: workers
write an attempt's start and end with none, and each still cost an index entry.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from taskcenter.lib.field_indexes import own_index_to_meta, without_own_index

FILTER_COLUMNS = [
    ("task_type", "task_type_idx", models.CharField(max_length=100, verbose_name="type")),
    (
        "platform",
        "task_platform_idx",
        models.CharField(blank=True, max_length=50, verbose_name="platform"),
    ),
    (
        "action",
        "task_action_idx",
        models.CharField(blank=True, max_length=50, verbose_name="action"),
    ),
    (
        "external_id",
        "task_external_idx",
        models.CharField(blank=True, max_length=128, verbose_name="external id"),
    ),
    (
        "account_id",
        "task_account_idx",
        models.CharField(blank=True, max_length=64, verbose_name="account id"),
    ),
    (
        "proxy_id",
        "task_proxy_idx",
        models.CharField(blank=True, max_length=64, verbose_name="proxy id"),
    ),
    (
        "data_source_id",
        "task_data_source_idx",
        models.CharField(blank=True, max_length=64, verbose_name="data source id"),
    ),
    (
        "batch_id",
        "task_batch_idx",
        models.CharField(blank=True, max_length=64, verbose_name="batch id"),
    ),
]


class Migration(migrations.Migration):
    dependencies = [
        ("taskcenter", "0019_fewer_index_pages_per_submission"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        *(
            own_index_to_meta(
                "taskcenter", "task", column, field, models.Index(fields=[column], name=name)
            )
            for column, name, field in FILTER_COLUMNS
        ),
        without_own_index(
            "taskcenter",
            "taskexecution",
            "task",
            models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="executions",
                to="taskcenter.task",
                verbose_name="task",
            ),
        ),
        without_own_index(
            "taskcenter",
            "taskevent",
            "actor_user",
            models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
                verbose_name="user",
            ),
        ),
        migrations.AddIndex(
            model_name="taskevent",
            index=models.Index(
                condition=models.Q(("actor_user__isnull", False)),
                fields=["actor_user"],
                name="event_actor_user_idx",
            ),
        ),
    ]
