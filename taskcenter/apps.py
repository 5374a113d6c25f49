from django.apps import AppConfig


class TaskCenterConfig(AppConfig):
    name = "taskcenter"
    verbose_name = "Task Center"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks

        from . import encryption, kinds

        checks.register(encryption.check_keys)
        kinds.autodiscover()
