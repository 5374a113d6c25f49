"""Asking the platforms whether accounts' saved logins still work (social-auto-upload's
``/getValidAccounts``), and recording the answers on the accounts.

The original opens each platform's creator page with the account's cookies and marks the account
invalid when a login prompt shows. Here the publish provider asks the platform over HTTP
(``PublishProvider.check_login``), one account after another and outside any transaction; each
verdict is written with one UPDATE. A platform that cannot answer says nothing about a login:
the account keeps its status; when the platform is unreachable or failing (a retryable error)
the accounts after it are not asked either, as each would wait for the same timeout.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils import timezone

from taskcenter.errors import PermanentError, RetryableError

from .models import LoginStatus, PlatformAccount
from .providers import get_provider

logger = logging.getLogger(__name__)

# Seconds one check may take: the page waits for all of them.
CHECK_TIMEOUT = 10.0


@dataclass(frozen=True)
class LoginCheck:
    """What the checks found: the accounts with their status as now stored, and the reason
    some could not be checked (empty when all were)."""

    accounts: list[PlatformAccount]
    unchecked: int = 0
    problem: str = ""


def record_login_status(account: PlatformAccount, status: int) -> PlatformAccount:
    """Store the platform's verdict on ``account``'s login; return it updated."""
    now = timezone.now()
    PlatformAccount.objects.filter(pk=account.pk).update(login_status=status, login_checked_at=now)
    account.login_status, account.login_checked_at = status, now
    return account


def check_logins(accounts: Sequence[PlatformAccount]) -> LoginCheck:
    """Ask the platform about each account's login, in order, and record each verdict."""
    provider = get_provider()
    checked: list[PlatformAccount] = []
    unchecked, problem = 0, ""
    for position, account in enumerate(accounts):
        credentials: dict = account.credentials if isinstance(account.credentials, dict) else {}
        try:
            valid = provider.check_login(
                account.platform_name, str(account.pk), credentials, timeout=CHECK_TIMEOUT
            )
        except RetryableError as exc:
            logger.warning("Login checks stopped at account %s: %s", account.pk, exc)
            rest = list(accounts[position:])
            return LoginCheck([*checked, *rest], unchecked + len(rest), str(exc))
        except PermanentError as exc:
            logger.warning("Login check of account %s refused: %s", account.pk, exc)
            checked.append(account)
            unchecked, problem = unchecked + 1, str(exc)
            continue
        status = LoginStatus.VALID if valid else LoginStatus.EXPIRED
        checked.append(record_login_status(account, status))
    return LoginCheck(checked, unchecked, problem)
