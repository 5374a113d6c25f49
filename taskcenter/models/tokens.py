"""API tokens, kept as digests: the database never holds a key that would authenticate.

A key is shown once, when ``manage.py issue_token`` makes it; the table keeps its SHA-256 (a
lookup by digest needs no per-row salt: keys are 160 random bits, not passwords) and its first
characters, so an operator can tell tokens apart in the admin. A user may hold several tokens
(one per client), each revocable on its own.
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# How many leading characters of a key are kept in clear to recognise it by.
PREFIX_LENGTH = 4


def token_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def mask(prefix: str) -> str:
    return f"{prefix}…"


class ApiTokenManager(models.Manager["ApiToken"]):
    def issue(self, user) -> tuple[ApiToken, str]:
        """A new token for ``user`` and its key: the only time the key exists in full."""
        # 40 hex characters, the shape of the keys issued before tokens were hashed.
        key = secrets.token_hex(20)
        token = self.create(user=user, digest=token_digest(key), prefix=key[:PREFIX_LENGTH])
        return token, key

    def for_key(self, key: str) -> ApiToken | None:
        # ``get``, not ``first``: the digest is unique, and ``first`` would have every request's
        # query ordered by the model's ordering, compiled each time.
        try:
            return self.select_related("user").get(digest=token_digest(key))
        except ApiToken.DoesNotExist:
            return None


class ApiToken(models.Model):
    """A bearer token of ``user`` (``Authorization: Bearer <key>``)."""

    digest = models.CharField(_("SHA-256 of the key"), max_length=64, unique=True, editable=False)
    prefix = models.CharField(_("key starts with"), max_length=PREFIX_LENGTH, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="api_tokens",
        verbose_name=_("user"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    objects = ApiTokenManager()

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return mask(self.prefix)
