"""Built-in kinds that need no platform; imported by ``kinds.autodiscover()``."""

from .builtin_kinds import demo, http, noop  # noqa: F401
