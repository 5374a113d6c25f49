from django.apps import AppConfig


class SandboxConfig(AppConfig):
    """The sandbox platform: no models, only ``manage.py run_sandbox_platform``."""

    name = "sandbox"
    verbose_name = "Sandbox platform"
