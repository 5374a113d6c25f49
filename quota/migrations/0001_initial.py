"""The quota app adopts the tables the core kept until now (renamed by taskcenter 0012).

A database made before the move keeps every balance and ledger row; one made fresh gets the
same tables through taskcenter's migrations. The state operations describe them; the content
types and permissions move with them, so operators keep the rights they were given.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

# (old app, old model) -> (new app, new model)
MOVED = {
    ("taskcenter", "quotaaccount"): ("quota", "quotabalance"),
    ("taskcenter", "quotaledgerentry"): ("quota", "quotaledgerentry"),
}


def move_content_types(apps, schema_editor, moves=MOVED):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    db = schema_editor.connection.alias
    for (old_app, old_model), (new_app, new_model) in moves.items():
        old = ContentType.objects.using(db).filter(app_label=old_app, model=old_model).first()
        if old is None:
            continue
        new = ContentType.objects.using(db).filter(app_label=new_app, model=new_model).first()
        if new is not None:  # created by an earlier post_migrate; keep the one holding grants
            Permission.objects.using(db).filter(content_type=new).delete()
            new.delete()
        old.app_label, old.model = new_app, new_model
        old.save(update_fields=["app_label", "model"])
        for permission in Permission.objects.using(db).filter(content_type=old):
            action, _, _ = permission.codename.partition("_")
            permission.codename = f"{action}_{new_model}"
            permission.save(update_fields=["codename"])


def move_content_types_back(apps, schema_editor):
    back = {new: old for old, new in MOVED.items()}
    move_content_types(apps, schema_editor, moves=back)


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("taskcenter", "0012_quota_moves_to_its_own_app"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="QuotaBalance",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("balance", models.BigIntegerField(default=0, verbose_name="balance")),
                        (
                            "updated_at",
                            models.DateTimeField(
                                default=django.utils.timezone.now, verbose_name="updated at"
                            ),
                        ),
                        (
                            "user",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="quota_balance",
                                to=settings.AUTH_USER_MODEL,
                                verbose_name="user",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "quota balance",
                        "verbose_name_plural": "quota balances",
                        "constraints": [
                            models.CheckConstraint(
                                condition=models.Q(("balance__gte", 0)),
                                name="quota_balance_not_negative",
                            )
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="QuotaLedgerEntry",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "kind",
                            models.CharField(
                                choices=[("charge", "charge"), ("refund", "refund"), ("grant", "grant")],
                                max_length=8,
                                verbose_name="kind",
                            ),
                        ),
                        (
                            "amount",
                            models.BigIntegerField(
                                help_text="Signed: charges are negative.", verbose_name="amount"
                            ),
                        ),
                        ("balance_after", models.BigIntegerField(verbose_name="balance after")),
                        (
                            "at",
                            models.DateTimeField(default=django.utils.timezone.now, verbose_name="at"),
                        ),
                        ("note", models.CharField(blank=True, max_length=255, verbose_name="note")),
                        (
                            "refund_of",
                            models.OneToOneField(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="refunded_by",
                                to="quota.quotaledgerentry",
                                verbose_name="refund of",
                            ),
                        ),
                        (
                            "task",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="quota_entries",
                                to="taskcenter.task",
                                verbose_name="task",
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="quota_entries",
                                to=settings.AUTH_USER_MODEL,
                                verbose_name="user",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "quota ledger entry",
                        "verbose_name_plural": "quota ledger",
                        "ordering": ["-at", "-id"],
                        "indexes": [
                            models.Index(fields=["user", "-at"], name="quota_ledger_user_at_idx"),
                            models.Index(fields=["kind", "-at"], name="quota_ledger_kind_at_idx"),
                        ],
                    },
                ),
            ],
        ),
        migrations.RunPython(move_content_types, move_content_types_back),
    ]
