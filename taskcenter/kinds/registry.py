"""The registry of task kinds: a type name, its parameters schema, handler and retry policy.

A kind is registered with a decorator::

    @task_kind("demo.countdown", params=CountdownParams, max_attempts=1)
    def countdown(task, ctx): ...

Unknown kinds and bad parameters are refused when a task is created, never in the worker.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils.module_loading import autodiscover_modules
from rest_framework import serializers

from taskcenter.errors import PermanentError, UnknownKind

if TYPE_CHECKING:
    from taskcenter.kinds.context import AttemptContext
    from taskcenter.models import Task

Handler = Callable[["Task", "AttemptContext"], Any]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off with jitter: ``base * factor**(n-1)``, capped, then jittered."""

    max_attempts: int = 3
    base_delay: float = 2.0
    factor: float = 2.0
    max_delay: float = 300.0
    jitter: float = 0.5  # fraction of the delay that is randomised (0 = none, 1 = "full jitter")
    permanent_errors: tuple[type[BaseException], ...] = (PermanentError,)

    def delay_for(self, attempt: int, *, rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1``, after attempt ``attempt`` failed."""
        raw = min(self.max_delay, self.base_delay * self.factor ** max(attempt - 1, 0))
        spread = raw * self.jitter
        return raw - spread + (rng or random).random() * spread

    def is_permanent(self, exc: BaseException) -> bool:
        return isinstance(exc, self.permanent_errors)


@dataclass(frozen=True)
class TaskKind:
    name: str
    handler: Handler
    params: type[serializers.Serializer] | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    description: str = ""
    platform: str = ""
    # The task's ``action`` when the client gives none (new-api filters on it: "song").
    action: str = ""
    # What a task of this kind costs from its owner's quota balance when created (0: free).
    quota: int = 0
    # Parameters mirrored into the task's own (text) columns of the same name whenever its
    # parameters are set, so list filters find it by them however it was created: a sync task
    # made through /api/v1/tasks still shows under /api/sync/tasks?data_source_id=...
    columns: tuple[str, ...] = ()
    # Lost attempts (worker vanished) a task may have before it fails; None: the global
    # ``TASKCENTER["MAX_LOST_ATTEMPTS"]``. Lower it for kinds that can take a worker down.
    max_lost_attempts: int | None = None
    # A demonstration kind: known only while ``TASKCENTER["DEMO_KINDS"]`` is on.
    demo: bool = False

    @property
    def lost_attempts_limit(self) -> int:
        if self.max_lost_attempts is not None:
            return self.max_lost_attempts
        return lost_attempts_limit_default()

    def validate_parameters(self, data: Any) -> dict:
        """Return the cleaned parameters, or raise ``serializers.ValidationError`` naming fields."""
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise serializers.ValidationError({"parameters": ["Must be a JSON object."]})
        if self.params is None:
            return dict(data)
        serializer = self.params(data=data)
        if not serializer.is_valid():
            raise serializers.ValidationError({"parameters": serializer.errors})
        return dict(serializer.validated_data)

    def validate_many_parameters(
        self, items: list[Any]
    ) -> list[dict | serializers.ValidationError]:
        """``validate_parameters`` for many parameter objects: for each, the cleaned parameters
        or the ``ValidationError`` that call would raise.

        One instance of the kind's serializer checks them all, each as a fresh instance would
        (its ``initial_data`` is the item), the way DRF's own ``many=True`` reuses one child:
        building the serializer's fields again for every item costs several times the check.
        """
        results: list[dict | serializers.ValidationError] = []
        serializer = self.params(data={}) if self.params is not None else None
        for data in items:
            if data is None:
                data = {}
            if not isinstance(data, Mapping):
                results.append(
                    serializers.ValidationError({"parameters": ["Must be a JSON object."]})
                )
            elif serializer is None:
                results.append(dict(data))
            else:
                serializer.initial_data = data
                for leftover in ("_validated_data", "_errors", "_data"):
                    serializer.__dict__.pop(leftover, None)
                if serializer.is_valid():
                    results.append(dict(serializer.validated_data))
                else:
                    results.append(serializers.ValidationError({"parameters": serializer.errors}))
        return results

    def column_values(self, parameters: dict) -> dict[str, str]:
        """The task columns that mirror ``parameters`` (see ``columns``)."""
        return {name: _as_text(parameters.get(name)) for name in self.columns}


def lost_attempts_limit_default() -> int:
    return int(settings.TASKCENTER.get("MAX_LOST_ATTEMPTS", 3))


def _as_text(value: Any) -> str:
    return "" if value is None else str(value)


_registry: dict[str, TaskKind] = {}


def task_kind(
    name: str,
    *,
    params: type[serializers.Serializer] | None = None,
    max_attempts: int = 3,
    backoff: RetryPolicy | None = None,
    permanent: tuple[type[BaseException], ...] = (),
    description: str = "",
    platform: str = "",
    action: str = "",
    quota: int = 0,
    columns: tuple[str, ...] = (),
    max_lost_attempts: int | None = None,
    demo: bool = False,
) -> Callable[[Handler], Handler]:
    """Register ``handler(task, ctx)`` as the handler of kind ``name``."""

    if max_lost_attempts is not None and max_lost_attempts < 0:
        raise ValueError(f"max_lost_attempts of {name!r} cannot be negative")

    def register(handler: Handler) -> Handler:
        policy = backoff or RetryPolicy()
        policy = RetryPolicy(
            max_attempts=max_attempts,
            base_delay=policy.base_delay,
            factor=policy.factor,
            max_delay=policy.max_delay,
            jitter=policy.jitter,
            permanent_errors=(PermanentError, *permanent),
        )
        existing = _registry.get(name)
        if existing is not None and existing.handler is not handler:
            qualname = f"{existing.handler.__module__}.{existing.handler.__qualname__}"
            raise ValueError(f"Task kind {name!r} is already registered by {qualname}")
        doc = (handler.__doc__ or "").strip()
        _registry[name] = TaskKind(
            name=name,
            handler=handler,
            params=params,
            retry=policy,
            description=description or (doc.splitlines()[0] if doc else ""),
            platform=platform,
            action=action,
            quota=quota,
            columns=columns,
            max_lost_attempts=max_lost_attempts,
            demo=demo,
        )
        return handler

    return register


def demo_kinds_enabled() -> bool:
    return bool(settings.TASKCENTER.get("DEMO_KINDS"))


def get_kind(name: str) -> TaskKind:
    """The kind registered as ``name``; ``UnknownKind`` if none is, or it is a demo kind that
    is turned off (so its tasks are refused at creation and failed by the worker)."""
    kind = _registry.get(name)
    if kind is not None and (not kind.demo or demo_kinds_enabled()):
        return kind
    known = ", ".join(all_kinds()) or "none"
    why = " (demo kinds are turned off: TASKCENTER_DEMO_KINDS)" if kind is not None else ""
    raise UnknownKind(f"Unknown task type {name!r}{why}. Known types: {known}.")


def all_kinds() -> dict[str, TaskKind]:
    """Every kind a task may have now: the registered ones, less demo kinds when turned off."""
    enabled = demo_kinds_enabled()
    return {name: kind for name, kind in sorted(_registry.items()) if enabled or not kind.demo}


def autodiscover() -> None:
    """Import every installed app's ``task_kinds`` module, then the configured extra modules."""
    autodiscover_modules("task_kinds")
    for module in settings.TASKCENTER.get("KIND_MODULES", ()):
        import_module(module)
