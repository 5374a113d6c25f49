"""WSGI entry point for Task Center."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskcenter.settings")

application = get_wsgi_application()
