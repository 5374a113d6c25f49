from django.apps import AppConfig


class SyncingConfig(AppConfig):
    name = "syncing"
    verbose_name = "Data sync"
    default_auto_field = "django.db.models.BigAutoField"
