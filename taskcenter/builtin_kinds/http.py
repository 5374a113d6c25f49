"""``http.request``: perform one real HTTP request and record what came back.

Requests to loopback, private, link-local and other non-public addresses are refused unless
``TASKCENTER_HTTP_ALLOW_PRIVATE`` is on: otherwise any user could make the worker read the
cloud metadata service or the admin port of a neighbour (SSRF). Redirects are followed by hand
so every hop is checked the same way.
"""

import ipaddress
import socket
import time
from urllib.parse import urljoin, urlsplit

import requests
from django.conf import settings
from rest_framework import serializers

from .. import platform_http
from ..errors import PermanentError, RetryableError
from ..kinds import RetryPolicy, task_kind

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
MAX_REDIRECTS = 5
RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}


class HttpRequestParams(serializers.Serializer):
    url = serializers.URLField(max_length=2048)
    method = serializers.ChoiceField(choices=METHODS, default="GET")
    headers = serializers.DictField(
        child=serializers.CharField(max_length=4096, allow_blank=True), default=dict
    )
    body = serializers.CharField(
        max_length=1_000_000, required=False, allow_blank=True, trim_whitespace=False
    )
    json = serializers.JSONField(required=False)
    timeout = serializers.FloatField(min_value=0.1, default=10.0)
    follow_redirects = serializers.BooleanField(default=True)
    fail_on_status = serializers.BooleanField(
        default=True,
        help_text="Treat 4xx as a permanent failure and 5xx/429 as retryable, instead of "
        "recording any status as the result.",
    )

    def validate_url(self, value):
        if urlsplit(value).scheme not in {"http", "https"}:
            raise serializers.ValidationError("Only http and https URLs are allowed.")
        return value

    def validate_headers(self, value):
        if len(value) > 50:
            raise serializers.ValidationError("At most 50 headers.")
        return value

    def validate_timeout(self, value):
        limit = settings.TASKCENTER["HTTP_MAX_TIMEOUT_SECONDS"]
        if value > limit:
            raise serializers.ValidationError(
                f"Ensure this value is less than or equal to {limit}."
            )
        return value

    def validate(self, attrs):
        if "body" in attrs and "json" in attrs:
            raise serializers.ValidationError({"json": ["Give either body or json, not both."]})
        return attrs


def _refused_reason(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    # Most specific first: 0.0.0.0 and 127.0.0.1 are also "private" in Python's tables.
    for label, flag in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
    ):
        if flag:
            return label
    return None if address.is_global else "non-public"


def check_destination(url: str) -> None:
    """Raise PermanentError if ``url``'s host resolves to an address we must not call."""
    if settings.TASKCENTER["HTTP_ALLOW_PRIVATE_ADDRESSES"]:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise RetryableError(f"Cannot resolve host {host!r}: {exc}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        reason = _refused_reason(address)
        if reason:
            raise PermanentError(
                f"Refusing to connect to {host} ({address} is a {reason} address). "
                "Set TASKCENTER_HTTP_ALLOW_PRIVATE=true to allow internal targets."
            )


def _read_bounded(response: requests.Response, limit: int) -> tuple[bytes, bool]:
    chunks, size = [], 0
    for chunk in response.iter_content(chunk_size=8192):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], True
    return b"".join(chunks), False


@task_kind(
    "http.request",
    params=HttpRequestParams,
    max_attempts=3,
    backoff=RetryPolicy(base_delay=2.0, factor=2.0, max_delay=60.0),
)
def http_request(task, ctx):
    """Perform an HTTP request with a timeout; record status, headers and a bounded body."""
    params = task.parameters
    method, url = params["method"], params["url"]
    kwargs = {"headers": params["headers"], "timeout": params["timeout"]}
    if "json" in params:
        kwargs["json"] = params["json"]
    elif "body" in params:
        kwargs["data"] = params["body"].encode()
    limit = settings.TASKCENTER["HTTP_MAX_BODY_BYTES"]
    started = time.monotonic()
    ctx.progress(0, f"{method} {url}", force=True)
    try:
        with requests.Session() as session:
            for _ in range(MAX_REDIRECTS + 1):
                check_destination(url)
                response = session.request(
                    method, url, allow_redirects=False, stream=True, **kwargs
                )
                if not (params["follow_redirects"] and response.is_redirect):
                    break
                url = urljoin(url, response.headers["location"])
                if response.status_code in (301, 302, 303) and method != "HEAD":
                    method, kwargs = (
                        "GET",
                        {k: v for k, v in kwargs.items() if k in ("headers", "timeout")},
                    )
                response.close()
            else:
                raise PermanentError(f"More than {MAX_REDIRECTS} redirects")
            with response:
                body, truncated = _read_bounded(response, limit)
    except requests.Timeout as exc:
        raise RetryableError(f"Timed out after {params['timeout']:g} s: {exc}") from exc
    except requests.ConnectionError as exc:
        raise RetryableError(f"Connection failed: {exc}") from exc
    except requests.RequestException as exc:
        raise PermanentError(f"Request failed: {exc}") from exc

    status = response.status_code
    if params["fail_on_status"] and status >= 400:
        detail = body[:200].decode(response.encoding or "utf-8", errors="replace")
        message = f"{method} {url} returned HTTP {status}: {detail}"
        if status in RETRYABLE_STATUS or status >= 500:
            raise RetryableError(message, retry_after=platform_http.retry_after(response))
        raise PermanentError(message)
    ctx.progress(100, f"HTTP {status}", force=True)
    return {
        "url": url,
        "method": method,
        "status_code": status,
        "reason": response.reason,
        "headers": dict(response.headers),
        "body": body.decode(response.encoding or "utf-8", errors="replace"),
        "body_bytes": len(body),
        "body_truncated": truncated,
        "elapsed_ms": round((time.monotonic() - started) * 1000, 1),
    }
