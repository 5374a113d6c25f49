"""Account holds: which attempt is using a platform account right now."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from .tasks import TaskExecution


class AccountHold(models.Model):
    """Which attempt is using a platform account: one task at a time per account.

    The hold belongs to an execution and ends when that execution closes (completed, failed,
    stopped, cancelled or lost), so a dead worker cannot keep an account busy for longer than its
    lease; ``cooldown`` seconds must then pass before the next attempt may take the account.
    Account ids are whatever a client sends, so holds are kept per owner: one user's tasks never
    wait for, or learn about, another user's. Written only by ``taskcenter.kinds.account_holds``.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("owner"),
    )
    platform = models.CharField(_("platform"), max_length=50, blank=True)
    account_id = models.CharField(_("account id"), max_length=64)
    execution = models.ForeignKey(
        TaskExecution,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("holder"),
    )
    cooldown = models.FloatField(_("cooldown (s)"), default=0)
    held_since = models.DateTimeField(_("held since"), null=True, blank=True)
    released_at = models.DateTimeField(_("released at"), null=True, blank=True)

    class Meta:
        verbose_name = _("account hold")
        verbose_name_plural = _("account holds")
        ordering = ["platform", "account_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "platform", "account_id"], name="account_hold_owner_account_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.platform or '-'}:{self.account_id}"
