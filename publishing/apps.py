from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PublishingConfig(AppConfig):
    name = "publishing"
    verbose_name = _("Publishing")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from taskcenter.api.routes import register_viewset

        from .api.records import PublishTaskRecordViewSet

        # /api/v1/publish-records: the records on the canonical API, beside the tasks.
        register_viewset("publish-records", PublishTaskRecordViewSet, basename="publish-record")
