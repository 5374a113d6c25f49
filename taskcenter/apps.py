from django.apps import AppConfig


class TaskCenterConfig(AppConfig):
    name = "taskcenter"
    verbose_name = "Task Center"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import kinds

        kinds.autodiscover()
