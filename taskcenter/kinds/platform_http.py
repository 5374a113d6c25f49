"""One HTTP call to a third-party platform, with transport failures sorted for the retry policy.

Every provider (scraping, publishing, generation, data sync) speaks JSON over ``requests`` to a
configured base URL and must tell a worker the same things: a timeout or a refused connection
is worth retrying, a malformed request is not, and a 2xx whose body is not a JSON object is the
platform's hiccup. What each status code means stays with each provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from taskcenter.errors import PermanentError, RetryableError


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout: float,
    party: str = "platform",
    timeout_error: type[RetryableError] = RetryableError,
    **kwargs: Any,
) -> requests.Response:
    """Send one request; raise ``RetryableError`` (or ``timeout_error``) or ``PermanentError``.

    Redirects are never followed: a 3xx must not carry the bearer token anywhere but the
    configured base URL. ``party`` names the other side in error messages.
    """
    try:
        return session.request(method, url, timeout=timeout, allow_redirects=False, **kwargs)
    except requests.Timeout as exc:
        raise timeout_error(f"The {party} did not answer within {timeout:g} s") from exc
    except requests.ConnectionError as exc:
        raise RetryableError(f"Cannot reach the {party}: {exc}") from exc
    except requests.RequestException as exc:
        raise PermanentError(f"The {party} request failed: {exc}") from exc


def json_object(response: requests.Response, *, party: str = "platform") -> dict:
    """The response's JSON object; ``{}`` for an error body that is not one.

    A successful answer that is not a JSON object is retried: platforms send HTML error pages
    from their load balancers with a 200 now and then.
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    if response.ok:
        raise RetryableError(f"The {party} returned a body that is not a JSON object")
    return {}


# A platform asking for more than an hour is asking to be left alone; the back-off takes over.
MAX_RETRY_AFTER = 3600.0


def retry_after(response: requests.Response) -> float | None:
    """Seconds the platform's ``Retry-After`` asks for (capped), or None when it names none."""
    try:
        return min(max(float(response.headers.get("Retry-After", "")), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        return None


def raise_for_status(
    response: requests.Response,
    body: dict,
    *,
    party: str = "platform",
    retryable: frozenset[int] = frozenset({408}),
) -> None:
    """Nothing for a 2xx; else 429 (honouring Retry-After), 5xx and ``retryable`` are worth
    another attempt and every other status is permanent (a suspended account, a bad request).
    """
    if response.ok:
        return
    status = response.status_code
    message = str(body.get("error") or body.get("detail") or f"The {party} returned HTTP {status}")
    if status == 429:
        raise RetryableError(message, retry_after=retry_after(response))
    if status >= 500 or status in retryable:
        raise RetryableError(message)
    raise PermanentError(message)


class PlatformClient:
    """A provider's line to one configured platform: its base URL, bearer token, default
    timeout and one keep-alive session (make one per attempt).

    ``config`` is the app's settings dict, with ``BASE_URL``, ``TOKEN`` and ``timeout_key``.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        timeout_key: str = "TIMEOUT",
        party: str = "platform",
        timeout_error: type[RetryableError] = RetryableError,
    ) -> None:
        self.base_url = config["BASE_URL"].rstrip("/")
        self.token = config["TOKEN"]
        self.timeout = float(config[timeout_key])
        self.party = party
        self.timeout_error = timeout_error
        self.session = requests.Session()

    def call(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> tuple[requests.Response, dict]:
        """``send`` to the base URL + ``path`` with the token; the response and its JSON object.

        What a non-2xx status means is left to the caller (``raise_for_status`` or its own).
        """
        response = send(
            self.session,
            method,
            self.base_url + path,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/json",
                **(headers or {}),
            },
            timeout=self.timeout if timeout is None else timeout,
            party=self.party,
            timeout_error=self.timeout_error,
            **kwargs,
        )
        return response, json_object(response, party=self.party)
