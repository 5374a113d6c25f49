"""The publishing area's login check: does the platform still accept an account's saved login?

Task Center asks it for social-auto-upload's ``/getValidAccounts``, where the original opens each
platform's creator page with the account's cookies and looks for a login prompt::

    POST /publish/<platform>/accounts/check      X-Account-Id, {"credentials": {...}}
        -> 200 {"data": {"account_id", "logged_in": true}}
        -> 401 "Login expired"  the account's login was expired (``expire_login`` control)
        -> 401 "Not logged in"  no credentials were sent (an account that never logged in)

Each check is logged as ``{"event": "login_check", "platform", "account_id", "logged_in"}``.
"""

from __future__ import annotations

import time

from .publishing import _account, _area, _platform
from .routing import PlatformError, Request, route

NOT_LOGGED_IN = "Not logged in"


@route("POST", r"/publish/(?P<platform>[a-z]+)/accounts/check")
def check_login(request: Request) -> dict:
    area = _area(request)
    platform = _platform(request)
    body = request.json()
    try:
        account = _account(request, area)
    except PlatformError as exc:
        if exc.status == 401:
            _log(area, platform, request.account_id, logged_in=False)
        raise
    credentials = body.get("credentials")
    if not isinstance(credentials, dict) or not credentials:
        _log(area, platform, account, logged_in=False)
        raise PlatformError(401, NOT_LOGGED_IN)
    _log(area, platform, account, logged_in=True)
    return {"data": {"account_id": account, "logged_in": True}}


def _log(area, platform: str, account: str, *, logged_in: bool) -> None:
    area.record(
        event="login_check",
        platform=platform,
        account_id=account,
        logged_in=logged_in,
        at=time.time(),
    )
