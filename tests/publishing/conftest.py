"""Fixtures of the publishing tests: the sandbox platform's publishing area."""

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
