"""Tests of migrations: the test database taken back to an earlier migration and forward again."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.apps.registry import Apps
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

Targets = list[tuple[str, str]]


class MigrationSteps:
    """Moves between ``before`` and the latest migrations (a fresh executor each time: the one
    that migrated has a stale graph state)."""

    def __init__(self, before: Targets) -> None:
        self.before = before
        self.latest = MigrationExecutor(connection).loader.graph.leaf_nodes()

    @property
    def old_apps(self) -> Apps:
        """The models as they were at ``before``."""
        return MigrationExecutor(connection).loader.project_state(self.before).apps

    def back(self) -> None:
        MigrationExecutor(connection).migrate(self.before)

    def forward(self) -> None:
        MigrationExecutor(connection).migrate(self.latest)


@contextmanager
def migrated_back_to(before: Targets) -> Iterator[MigrationSteps]:
    """The test database at ``before`` inside the block; at the latest migrations after it,
    whatever happened inside."""
    steps = MigrationSteps(before)
    try:
        steps.back()
        yield steps
    finally:
        steps.forward()
