"""Fixtures of the publishing tests: the sandbox platform's publishing area, and the platform
provider pointed at it for account logins."""

from __future__ import annotations

import pytest

from sandbox.platform import SandboxPlatform
from sandbox.publishing import PublishingArea, area_of


@pytest.fixture
def platform(platform) -> SandboxPlatform:
    """The sandbox platform, where an upload is "processing" for one status check only."""
    area_of(platform).apply({"processing_polls": 1})
    return platform


@pytest.fixture
def area(platform) -> PublishingArea:
    return area_of(platform)


@pytest.fixture
def login_settings(settings, platform):
    """The platform provider pointed at the sandbox, looking every 50 ms, giving up after 10 s."""
    settings.PUBLISHING = {
        **settings.PUBLISHING,
        "BASE_URL": platform.url,
        "TOKEN": "sandbox-token",
        "LOGIN_POLL_SECONDS": 0.05,
        "LOGIN_TIMEOUT_SECONDS": 10.0,
    }
    return settings
