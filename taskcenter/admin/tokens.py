"""API tokens in the admin: recognisable by their first characters, never readable in full.

Keys are issued by ``manage.py issue_token`` (the one place a key is shown); here an operator
sees whose tokens exist and revokes one by deleting it.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from taskcenter.models.tokens import ApiToken, mask


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["masked_key", "user", "created_at"]
    list_filter = ["created_at"]
    search_fields = ["user__username", "prefix"]
    list_select_related = ["user"]
    fields = ("masked_key", "user", "created_at")
    readonly_fields = fields

    @admin.display(description=_("key"))
    def masked_key(self, obj: ApiToken) -> str:
        return mask(obj.prefix)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a key can be shown only once: `manage.py issue_token` issues them

    def has_change_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return False
