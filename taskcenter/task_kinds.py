"""Built-in kinds that need no platform; imported by ``kinds.autodiscover()``."""

from taskcenter.kinds.builtin import demo, http, noop  # noqa: F401
