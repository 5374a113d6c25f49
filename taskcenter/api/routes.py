"""Viewsets that apps add to the canonical API's router (``/api/v1/``).

The core cannot import the apps built on it; an app whose records belong on the canonical API
(publishing's publish records) registers its viewset here from ``AppConfig.ready``, and the
router lists it at the API root beside the core's own.
"""

from __future__ import annotations

from rest_framework.viewsets import ViewSetMixin

_viewsets: dict[str, tuple[type[ViewSetMixin], str]] = {}


def register_viewset(prefix: str, viewset: type[ViewSetMixin], *, basename: str) -> None:
    _viewsets[prefix] = (viewset, basename)


def registered_viewsets() -> list[tuple[str, type[ViewSetMixin], str]]:
    return [(prefix, viewset, basename) for prefix, (viewset, basename) in _viewsets.items()]
