"""ASGI entry point for Task Center (what ``run_service`` serves, through uvicorn workers)."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskcenter.settings")
# Read by the settings: no persistent database connections under ASGI.
os.environ["TASKCENTER_ASGI"] = "1"

django.setup(set_prefix=False)  # as get_asgi_application does

from django.conf import settings  # noqa: E402  (configured by django.setup)

from taskcenter.lib.asgi_body_limit import BodyLimit  # noqa: E402
from taskcenter.lib.asgi_handoff import HandOffMiddleware  # noqa: E402
from taskcenter.lib.asgi_one_thread import OneThreadASGIHandler  # noqa: E402

# The largest body any view takes: an API request, or a video upload with its multipart frame.
_MAX_BODY = (
    max(
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0,
        int(getattr(settings, "PUBLISHING", {}).get("MAX_UPLOAD_BYTES", 0)),
    )
    + 1024 * 1024
)

application = BodyLimit(
    HandOffMiddleware(OneThreadASGIHandler()),
    max_bytes=_MAX_BODY,
    drain_bytes=settings.REQUEST_DRAIN_MAX_BYTES,
)
