"""Fewer index pages per submission. A task's owner, an event's task and (in ``quota``) a
ledger entry's user lose their single-column foreign-key indexes, which the composite indexes
starting with the same column already serve; the task's client, template and channel ids, its
integration batch and an event's execution are indexed only where set (partial indexes): most
rows leave them empty, and every empty value still cost an index entry, a page written by each
``create_task`` (8 of the 49 pages a submission wrote on SQLite, with its quota entry).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from taskcenter.lib.field_indexes import without_own_index


class Migration(migrations.Migration):
    dependencies = [
        ("taskcenter", "0018_unlogged_cache_table"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="task",
            name="task_integration_idx",
        ),
        without_own_index(
            "taskcenter",
            "task",
            "channel_id",
            models.BigIntegerField(blank=True, null=True, verbose_name="channel id"),
        ),
        without_own_index(
            "taskcenter",
            "task",
            "client_id",
            models.BigIntegerField(blank=True, null=True, verbose_name="client id"),
        ),
        without_own_index(
            "taskcenter",
            "task",
            "owner",
            models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="tasks",
                to=settings.AUTH_USER_MODEL,
                verbose_name="owner",
            ),
        ),
        without_own_index(
            "taskcenter",
            "task",
            "template_id",
            models.BigIntegerField(blank=True, null=True, verbose_name="template id"),
        ),
        without_own_index(
            "taskcenter",
            "taskevent",
            "execution",
            models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="events",
                to="taskcenter.taskexecution",
                verbose_name="execution",
            ),
        ),
        without_own_index(
            "taskcenter",
            "taskevent",
            "task",
            models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="events",
                to="taskcenter.task",
                verbose_name="task",
            ),
        ),
        migrations.AddIndex(
            model_name="task",
            index=models.Index(
                condition=models.Q(("integration_id__isnull", False)),
                fields=["integration_id", "client_id", "template_id"],
                name="task_integration_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="task",
            index=models.Index(
                condition=models.Q(("client_id__isnull", False)),
                fields=["client_id"],
                name="task_client_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="task",
            index=models.Index(
                condition=models.Q(("template_id__isnull", False)),
                fields=["template_id"],
                name="task_template_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="task",
            index=models.Index(
                condition=models.Q(("channel_id__isnull", False)),
                fields=["channel_id"],
                name="task_channel_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="taskevent",
            index=models.Index(
                condition=models.Q(("execution__isnull", False)),
                fields=["execution"],
                name="event_execution_idx",
            ),
        ),
    ]
