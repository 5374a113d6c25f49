"""Quota: each user's balance and the append-only ledger of every charge, refund and grant.

Only ``quota.ledger`` writes these rows, always in the same transaction as the task change
that causes them, so ``balance`` always equals the sum of the user's ledger amounts.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class QuotaBalance(models.Model):
    """A user's spendable quota. Created on first use with the configured opening balance."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="quota_balance",
        verbose_name=_("user"),
    )
    balance = models.BigIntegerField(_("balance"), default=0)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)

    class Meta:
        verbose_name = _("quota balance")
        verbose_name_plural = _("quota balances")
        constraints = [
            # The guarded debit never takes a balance below zero; this makes it a database fact.
            models.CheckConstraint(
                condition=models.Q(balance__gte=0), name="quota_balance_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.balance})"


class LedgerKind(models.TextChoices):
    CHARGE = "charge", _("charge")
    """A task was created (or retried) and paid for."""

    REFUND = "refund", _("refund")
    """A charged task ended FAILED or CANCELLED (or was deleted unfinished)."""

    GRANT = "grant", _("grant")
    """An operator (or the opening balance) added quota; negative amounts take it away."""


class QuotaLedgerEntry(models.Model):
    """One change of a balance. Append-only: rows are never updated or deleted by the code."""

    # Indexed by ``quota_ledger_user_at_idx``, which starts with it.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="quota_entries",
        verbose_name=_("user"),
        db_index=False,
    )
    # SET_NULL: deleting a task must not rewrite the history of what was paid.
    task = models.ForeignKey(
        "taskcenter.Task",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="quota_entries",
        verbose_name=_("task"),
    )
    kind = models.CharField(_("kind"), max_length=8, choices=LedgerKind.choices)
    amount = models.BigIntegerField(_("amount"), help_text=_("Signed: charges are negative."))
    balance_after = models.BigIntegerField(_("balance after"))
    # A refund names the charge it gives back; one-to-one, so the database itself refuses a
    # second refund of the same charge whatever the code above it does.
    refund_of = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="refunded_by",
        verbose_name=_("refund of"),
    )
    at = models.DateTimeField(_("at"), default=timezone.now)
    note = models.CharField(_("note"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("quota ledger entry")
        verbose_name_plural = _("quota ledger")
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["user", "-at"], name="quota_ledger_user_at_idx"),
            models.Index(fields=["kind", "-at"], name="quota_ledger_kind_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount:+d} for {self.user}"
