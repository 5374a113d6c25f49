"""Quota in the operators' console: balances with a grant form, and the read-only ledger.

A balance is never typed in: the form's "grant" field goes through ``quota.grant``, which
moves the balance and writes the ledger row in one transaction.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from quota import ledger as quota
from quota.models import QuotaBalance, QuotaLedgerEntry
from taskcenter.admin.base import ReadOnlyModelAdmin


class QuotaBalanceForm(forms.ModelForm):
    grant = forms.IntegerField(
        label=_("Grant quota"),
        required=False,
        help_text=_("Added to the balance (negative takes away) and written to the ledger."),
    )
    note = forms.CharField(label=_("Grant note"), required=False, max_length=200)

    class Meta:
        model = QuotaBalance
        fields = ["user"]

    def clean_grant(self) -> int:
        amount = self.cleaned_data.get("grant") or 0
        balance = self.instance.balance if self.instance.pk else quota.default_balance()
        if balance + amount < 0:
            raise forms.ValidationError(
                _("The balance is %(balance)s; it cannot go below zero."),
                params={"balance": balance},
            )
        return amount


class QuotaLedgerInline(admin.TabularInline):
    model = QuotaLedgerEntry
    fk_name = "user"
    extra = 0
    max_num = 0
    can_delete = False
    fields = ("at", "kind", "amount", "balance_after", "task", "note")
    readonly_fields = fields
    ordering = ["-at", "-id"]
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(QuotaBalance)
class QuotaBalanceAdmin(admin.ModelAdmin):
    form = QuotaBalanceForm
    list_display = ["user", "balance", "updated_at"]
    search_fields = ["user__username", "user__email"]
    ordering = ["user__username"]
    readonly_fields = ["balance", "updated_at", "ledger_link"]
    raw_id_fields = ["user"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # The owner of an account never changes; a new account picks its user.
        return [*self.readonly_fields, "user"] if obj else self.readonly_fields

    @admin.display(description=_("ledger"))
    def ledger_link(self, obj: QuotaBalance) -> str:
        if not obj.pk:
            return "-"
        url = reverse("admin:quota_quotaledgerentry_changelist")
        return format_html('<a href="{}?user__id__exact={}">{}</a>', url, obj.user_id, _("Ledger"))

    def save_model(self, request: HttpRequest, obj: QuotaBalance, form: Any, change: bool) -> None:
        # Never save the row itself: the account is created with its opening balance and the
        # grant goes through the ledger, so balance == sum(ledger) always holds.
        quota.ensure_balance(obj.user_id)
        amount = form.cleaned_data.get("grant") or 0
        if amount:
            quota.grant(
                obj.user_id,
                amount,
                note=form.cleaned_data.get("note", ""),
                actor=f"admin:{request.user.get_username()}",
            )
        obj.pk = QuotaBalance.objects.get(user_id=obj.user_id).pk
        obj.refresh_from_db()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(QuotaLedgerEntry)
class QuotaLedgerEntryAdmin(ReadOnlyModelAdmin):
    list_display = ["at", "user", "kind", "amount", "balance_after", "task_link", "note"]
    list_filter = ["kind", ("user", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["user__username", "note", "=task__id"]
    date_hierarchy = "at"
    list_select_related = ["user"]
    ordering = ["-at", "-id"]

    @admin.display(description=_("task"), ordering="task_id")
    def task_link(self, obj: QuotaLedgerEntry) -> str:
        if obj.task_id is None:
            return "-"
        url = reverse("admin:taskcenter_task_change", args=[obj.task_id])
        return format_html('<a href="{}">#{}</a>', url, obj.task_id)
