"""social-auto-upload's web frontend as the tests serve it: a stand-in ``dist/`` folder of our
own (``sau_frontend_standin``: an index, a hashed bundle, the icon) that makes the same kinds of
requests the real pages make, and the settings an operator sets to serve it."""

from __future__ import annotations

import shutil
from pathlib import Path

STANDIN = Path(__file__).parent / "sau_frontend_standin"
STANDIN_BUNDLE = "standin-3f9c2a7e.js"
# What the axios client of the frontend reads and sends.
XSRF_COOKIE = "XSRF-TOKEN"
XSRF_HEADER = "HTTP_X_XSRF_TOKEN"


def serve_standin(settings, folder: Path) -> Path:
    """Copy the stand-in into ``folder``/dist and serve it as an operator would: the frontend
    folder set, and the CSRF cookie and header named as axios names them."""
    dist = folder / "dist"
    shutil.copytree(STANDIN, dist)
    settings.SOCIAL_AUTO_UPLOAD_FRONTEND_DIR = str(dist)
    settings.CSRF_COOKIE_NAME = XSRF_COOKIE
    settings.CSRF_HEADER_NAME = XSRF_HEADER
    return dist
