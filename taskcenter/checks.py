"""System checks of the project that ``manage.py check --deploy`` runs before production."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks

# The sandbox platform listens on the loopback; its bundled tokens start with this.
_SANDBOX_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_SANDBOX_TOKEN_PREFIX = "sandbox"  # noqa: S105 (a prefix to warn about, not a secret)


def _provider_settings() -> dict[str, dict[str, Any]]:
    return {
        name: value
        # _wrapped is LazySettings' own attribute; the django-stubs plugin takes it for a setting.
        for name, value in vars(settings._wrapped).items()  # type: ignore[misc]
        if name.isupper() and isinstance(value, dict) and "BASE_URL" in value
    }


def sandbox_addresses() -> list[tuple[str, int]]:
    """Where the settings expect the sandbox platform: each loopback ``BASE_URL``'s address."""
    found = set()
    for config in _provider_settings().values():
        parts = urlsplit(str(config.get("BASE_URL") or ""))
        if (parts.hostname or "") in _SANDBOX_HOSTS:
            found.add((parts.hostname or "", parts.port or 80))
    return sorted(found)


def check_providers_off_the_sandbox(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """With DEBUG off, a provider still pointed at the sandbox platform is a deployment mistake:
    tasks would "succeed" against a stand-in that publishes, scrapes and generates nothing."""
    if settings.DEBUG:
        return []
    found: list[checks.CheckMessage] = []
    for name, config in sorted(_provider_settings().items()):
        url = str(config.get("BASE_URL") or "")
        host = urlsplit(url).hostname or ""
        if host in _SANDBOX_HOSTS:
            found.append(
                checks.Warning(
                    f"{name}['BASE_URL'] is {url!r}, the sandbox platform, while DEBUG is off.",
                    hint="Point it at the real platform (see docs/configuration.md).",
                    id="taskcenter.W001",
                )
            )
        token = str(config.get("TOKEN") or "")
        if token.startswith(_SANDBOX_TOKEN_PREFIX):
            found.append(
                checks.Warning(
                    f"{name}['TOKEN'] is the sandbox platform's token while DEBUG is off.",
                    hint="Set the real platform's token (see docs/configuration.md).",
                    id="taskcenter.W002",
                )
            )
    return found
