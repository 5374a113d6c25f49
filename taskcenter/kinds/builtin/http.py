"""``http.request``: perform one real HTTP request and record what came back.

Requests to loopback, private, link-local and other non-public addresses are refused unless
``TASKCENTER_HTTP_ALLOW_PRIVATE`` is on (or the address is in ``TASKCENTER_HTTP_ALLOWED_NETWORKS``):
otherwise any user could make the worker read the cloud metadata service or the admin port of a
neighbour (SSRF). ``http_guard`` decides where each hop may go and pins the connection there;
redirects are followed by hand so every hop is checked the same way.
"""

import time
from urllib.parse import urljoin

import requests
from django.conf import settings
from rest_framework import serializers

from taskcenter.errors import PermanentError, RetryableError
from taskcenter.kinds import RetryPolicy, platform_http, task_kind
from taskcenter.kinds.builtin.http_guard import (
    Target,
    UnsafeURL,
    checked_address,
    parse_target,
    pinned_session,
)

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
        try:
            parse_target(value)
        except UnsafeURL as exc:
            raise serializers.ValidationError(str(exc)) from None
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


def check_destination(url: str) -> tuple[Target, str]:
    """Where ``url`` points and the one address to connect to; ``PermanentError`` when the
    URL is unsafe (a task stored before today's checks) or its host resolves to an address
    we must not call."""
    try:
        target = parse_target(url)
    except UnsafeURL as exc:
        raise PermanentError(f"Refusing URL {url!r}: {exc}") from None
    return target, checked_address(target)


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
        session, adapter = pinned_session()
        with session:
            for _ in range(MAX_REDIRECTS + 1):
                adapter.pin(*check_destination(url))
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
