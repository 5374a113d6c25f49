"""Account holds move into their owner's namespace, step 1: the owner column and its values.

Step 2 (0009) makes the column required and the owner part of the unique key. They are two
migrations because PostgreSQL refuses to alter a table in the transaction that updated its
foreign keys ("pending trigger events").
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def attribute_holds(apps, schema_editor):
    AccountHold = apps.get_model("taskcenter", "AccountHold")
    TaskExecution = apps.get_model("taskcenter", "TaskExecution")
    holder_owner = TaskExecution.objects.filter(pk=OuterRef("execution_id")).values(
        "task__owner_id"
    )[:1]
    AccountHold.objects.filter(execution__isnull=False).update(owner_id=Subquery(holder_owner))
    # A hold whose execution is gone has nobody to belong to, and no open execution: at most
    # it keeps an account resting for its cooldown, which ends early by dropping it.
    AccountHold.objects.filter(owner__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("taskcenter", "0007_task_lost_attempts"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="accounthold",
            name="owner",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
                verbose_name="owner",
            ),
        ),
        migrations.RunPython(attribute_holds, migrations.RunPython.noop),
    ]
