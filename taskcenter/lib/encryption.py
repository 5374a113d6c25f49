"""Secrets at rest: Fernet encryption with the keys in ``settings.CREDENTIALS_KEYS``.

The first key encrypts; every key decrypts (``MultiFernet``), so keys rotate without downtime:
put a new key first, run ``manage.py rotate_credentials`` (re-encrypts every value with it), then
drop the old key. Keys are checked when first used, not at import, so a bad key is a clear
error from the code that needed it (and from ``manage.py check``), never a crash on start-up.
"""

from __future__ import annotations

import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

KEYS_SETTING = "TASKCENTER_CREDENTIALS_KEYS"


class UndecryptableSecret(Exception):
    """A stored value that none of the configured keys encrypted."""


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.CREDENTIALS_KEYS))


@functools.lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured(f"{KEYS_SETTING} names no key")
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key))
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"{KEYS_SETTING}: key {position} of {len(keys)} is not a Fernet key "
                "(32 url-safe base64-encoded bytes; make one with "
                '`python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"`)'
            ) from None
    return MultiFernet(fernets)


def encrypt(plain: str) -> str:
    return fernet().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise UndecryptableSecret(
            f"A stored secret cannot be decrypted with any key in {KEYS_SETTING}: the key that "
            "encrypted it was removed or changed. Put it back (after the newest key) and run "
            "`manage.py rotate_credentials` before dropping it."
        ) from None


def rotate(token: str) -> str:
    """``token`` re-encrypted with the newest key (its timestamp kept)."""
    try:
        return fernet().rotate(token.encode()).decode()
    except InvalidToken:
        decrypt(token)  # raises the explanatory error
        raise


def check_keys(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    """``manage.py check`` (and every server start) names a malformed key."""
    try:
        fernet()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="taskcenter.E010")]
    return []
