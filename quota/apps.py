from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class QuotaConfig(AppConfig):
    name = "quota"
    verbose_name = _("Quota")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from taskcenter.lifecycle import hooks

        from .ledger import QuotaLedger

        hooks.install_billing(QuotaLedger())
