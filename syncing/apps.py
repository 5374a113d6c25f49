from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SyncingConfig(AppConfig):
    name = "syncing"
    verbose_name = _("Data sync")
    default_auto_field = "django.db.models.BigAutoField"
