"""ASGI entry point for Task Center (what ``run_service`` serves, through uvicorn workers)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskcenter.settings")
# Read by the settings: no persistent database connections under ASGI.
os.environ["TASKCENTER_ASGI"] = "1"

application = get_asgi_application()
