"""Account holds move into their owner's namespace, step 2: one hold per owner and account."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def keep_one_hold_per_account(apps, schema_editor):
    """Going back to one hold per (platform, account id): keep the newest of each account's."""
    AccountHold = apps.get_model("taskcenter", "AccountHold")
    seen: set[tuple[str, str]] = set()
    doomed = []
    for pk, platform, account_id in AccountHold.objects.order_by(
        "platform", "account_id", models.F("held_since").desc(nulls_last=True), "-pk"
    ).values_list("pk", "platform", "account_id"):
        if (platform, account_id) in seen:
            doomed.append(pk)
        seen.add((platform, account_id))
    AccountHold.objects.filter(pk__in=doomed).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("taskcenter", "0008_account_hold_owner"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="accounthold",
            name="owner",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
                verbose_name="owner",
            ),
        ),
        migrations.RemoveConstraint(
            model_name="accounthold",
            name="account_hold_platform_account_unique",
        ),
        migrations.AddConstraint(
            model_name="accounthold",
            constraint=models.UniqueConstraint(
                fields=("owner", "platform", "account_id"),
                name="account_hold_owner_account_unique",
            ),
        ),
        # Runs first when going back, before the old one-hold-per-account key returns.
        migrations.RunPython(migrations.RunPython.noop, keep_one_hold_per_account),
    ]
