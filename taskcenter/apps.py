from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TaskCenterConfig(AppConfig):
    name = "taskcenter"
    verbose_name = _("Task Center")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks

        from taskcenter import checks as taskcenter_checks
        from taskcenter.execution import dispatch
        from taskcenter.kinds import autodiscover
        from taskcenter.lib import encryption
        from taskcenter.lifecycle import hooks

        checks.register(encryption.check_keys)
        # A deployment check: `make run` and a developer's commands are demos against the sandbox.
        checks.register(
            taskcenter_checks.check_providers_off_the_sandbox, checks.Tags.security, deploy=True
        )
        hooks.install_dispatcher(dispatch.enqueue_attempt)
        hooks.install_bulk_dispatcher(dispatch.EngineJobs())
        autodiscover()
