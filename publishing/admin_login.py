"""The admin's "log in by QR code" page for platform accounts: the same login as ``GET /login``.

An operator picks the owner, the platform and the account name; the page shows the platform's
QR code and follows the login over the same event stream the social-auto-upload front end
reads. The stream's URL carries a signed, short-lived ticket naming the login the form asked
for, so another page cannot forge one, and the stream asks for the same permissions again.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseBase
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from . import login
from .models import PlatformAccount
from .platforms import PlatformType

TICKET_SALT = "publishing.admin.qr-login"
# Long enough to read the page and let the stream open; the login's own deadline runs after.
TICKET_MAX_AGE_SECONDS = 300


class QrLoginForm(forms.Form):
    owner = forms.CharField(
        label=_("Owner"), max_length=150, help_text=_("The user the account belongs to.")
    )
    platform_type = forms.TypedChoiceField(
        label=_("Platform"), choices=PlatformType.choices, coerce=int
    )
    account_name = forms.CharField(
        label=_("Account name"),
        max_length=100,
        help_text=_("The account's name; an existing account of the owner logs in again."),
    )

    def clean_owner(self) -> Any:
        username = self.cleaned_data["owner"]
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise forms.ValidationError(_("No user is called %(name)s."), params={"name": username})
        return user


def may_log_in(model_admin: admin.ModelAdmin, request: HttpRequest, exists: bool) -> bool:
    """Logging in again changes an account; a first login adds one."""
    if exists:
        return model_admin.has_change_permission(request)
    return model_admin.has_add_permission(request)


def _may_log_in_some(model_admin: admin.ModelAdmin, request: HttpRequest) -> None:
    if not (model_admin.has_add_permission(request) or model_admin.has_change_permission(request)):
        raise PermissionDenied


def qr_login_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    """The form (prefilled from the query string), then the QR code page."""
    _may_log_in_some(model_admin, request)
    form = QrLoginForm(request.POST if request.method == "POST" else request.GET or None)
    stream_url, summary = "", ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        target = login.login_target(data["owner"].pk, data["platform_type"], data["account_name"])
        if not may_log_in(model_admin, request, target.account_id is not None):
            raise PermissionDenied
        ticket = signing.dumps(
            {
                "owner": target.owner_id,
                "type": target.platform_type,
                "name": target.account_name,
            },
            salt=TICKET_SALT,
        )
        summary = _("Logging in %(name)s on %(platform)s for %(owner)s.") % {
            "name": target.account_name,
            "platform": PlatformType(target.platform_type).label,
            "owner": data["owner"].get_username(),
        }
        stream_url = (
            reverse("admin:publishing_platformaccount_qr_login_stream")
            + "?"
            + urlencode({"t": ticket})
        )
    opts = PlatformAccount._meta
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": opts,
        "title": _("Log in to a platform account by QR code"),
        "form": form,
        "stream_url": stream_url,
        "summary": summary,
        "accounts_url": reverse("admin:publishing_platformaccount_changelist"),
    }
    return TemplateResponse(request, "admin/publishing/platformaccount/qr_login.html", context)


def qr_login_stream_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponseBase:
    """The login's event stream, for the ticket the form handed out."""
    _may_log_in_some(model_admin, request)
    try:
        ticket = signing.loads(
            request.GET.get("t", ""), salt=TICKET_SALT, max_age=TICKET_MAX_AGE_SECONDS
        )
        owner_id, platform_type = int(ticket["owner"]), int(ticket["type"])
        account_name = str(ticket["name"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return HttpResponseBadRequest(_("This login link is not valid any more; start again."))
    target = login.login_target(owner_id, platform_type, account_name)
    if not may_log_in(model_admin, request, target.account_id is not None):
        raise PermissionDenied
    return login.event_stream(login.login_events(target))


@admin.action(description=_("Log in again by QR code"), permissions=["change"])
def log_in_again(
    model_admin: admin.ModelAdmin, request: HttpRequest, queryset: Any
) -> HttpResponse | None:
    """Open the QR code page for the one selected account."""
    accounts = list(queryset.select_related("owner")[:2])
    if len(accounts) != 1:
        model_admin.message_user(
            request, _("Select exactly one account to log in again."), messages.WARNING
        )
        return None
    account = accounts[0]
    query = urlencode(
        {
            "owner": account.owner.get_username(),
            "platform_type": account.platform_type,
            "account_name": account.account_name,
        }
    )
    return redirect(reverse("admin:publishing_platformaccount_qr_login") + "?" + query)
