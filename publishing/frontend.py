"""social-auto-upload's built web frontend, served on Task Center's own origin.

``SOCIAL_AUTO_UPLOAD_FRONTEND_DIR`` names the ``dist/`` folder of the frontend's ``npm run
build``. Its ``index.html`` loads ``/assets/...`` and ``/vite.svg`` by absolute path (Vite's
default base), so the files are served where social-auto-upload's own backend serves them: the
index at ``/``, the bundles under ``/assets/``, the icon at ``/vite.svg`` and ``/favicon.ico``.
Unset, these paths are unknown, as before.

Every file needs a logged-in user; a person without a session is sent to the login page and
back. The index sets the CSRF cookie that the frontend's HTTP client copies into its CSRF
header, so the pages' calls to the API carry the session and pass Django's CSRF check. Nothing
here is exempt from CSRF: these views only read.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import FileResponse, Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.urls import path
from django.utils.cache import patch_cache_control
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_safe

# Vite names every bundle after a hash of its content: a changed file has a new name.
IMMUTABLE = {"private": True, "max_age": 365 * 24 * 3600, "immutable": True}
# The icon keeps its name from build to build.
ICON = {"private": True, "max_age": 3600}


def frontend_root() -> Path:
    """The configured ``dist/`` folder; not configured, the URL is unknown (404)."""
    configured = settings.SOCIAL_AUTO_UPLOAD_FRONTEND_DIR
    if not configured:
        raise Http404("social-auto-upload's frontend is not served here")
    return Path(configured).resolve()


def frontend_file(root: Path, relative: str) -> Path:
    """The file at ``relative`` inside ``root``, or 404: a path that leaves the folder (``..``,
    an absolute path, a symlink pointing out) or names no regular file is not served."""
    if "\x00" in relative or "\\" in relative:
        raise Http404
    try:
        candidate = (root / relative).resolve()
        found = candidate.is_relative_to(root) and candidate.is_file()
    except (OSError, ValueError):  # a name too long, a loop of symlinks
        found = False
    if not found:
        raise Http404
    return candidate


def _serve(request: HttpRequest, relative: str, cache: dict | None) -> HttpResponseBase:
    root = frontend_root()
    # Before looking the file up, so that a visitor without a session learns nothing about
    # which files exist.
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    response = FileResponse(frontend_file(root, relative).open("rb"))
    if cache is not None:
        patch_cache_control(response, **cache)
    return response


@require_safe
@never_cache
@ensure_csrf_cookie
def index(request: HttpRequest) -> HttpResponseBase:
    """The single page; new builds are picked up at once (the page is never cached)."""
    return _serve(request, "index.html", cache=None)


@require_safe
def asset(request: HttpRequest, name: str) -> HttpResponseBase:
    """A hashed bundle, script, style sheet or font: cached for a year."""
    return _serve(request, f"assets/{name}", cache=IMMUTABLE)


@require_safe
def icon(request: HttpRequest) -> HttpResponseBase:
    """``/vite.svg``, which social-auto-upload's backend also answers for ``/favicon.ico``."""
    return _serve(request, "vite.svg", cache=ICON)


urlpatterns = [
    path("", index, name="sau-frontend"),
    path("assets/<path:name>", asset, name="sau-frontend-asset"),
    path("vite.svg", icon, name="sau-frontend-icon"),
    path("favicon.ico", icon, name="sau-frontend-favicon"),
]
