"""The video-publishing area of the sandbox platform, played for the publish kind.

Every call names the platform account in ``X-Account-Id``; a video belongs to the account that
uploaded it::

    POST /publish/<platform>/uploads               multipart, field "file"
                                                   -> 201 {"data": {"video_id", "size", "sha256"}}
                                                   an Idempotency-Key seen before (same platform
                                                   and account) -> 200, the first upload's video
    GET  /publish/<platform>/videos/<id>           -> {"data": {"video_id", "status"}}
                                                   status: processing | ready | published
    POST /publish/<platform>/videos/<id>/publish   {"title", "tags", "schedule_time", ...}
                                                   -> {"data": {"status": "published", "url"}}
                                                   schedule_time: ISO 8601 or null (now); the
                                                   other fields (category, is_draft,
                                                   product_link, ...) are kept as sent

A video is "processing" for the first ``processing_polls`` status checks, then "ready";
publishing a video that is not ready is a 409, publishing it twice answers the same. Errors:
401 "Login expired" for an account whose login expired (permanent), 500 on an injected upload
failure (retryable), 413 for an upload over ``max_upload_bytes``.

Controls (with the bearer token, like the API)::

    POST /publish/_control  {"expire_login": "acc" | [...], "restore_login": [...],
                             "expire_after_upload": [...], "upload_fail_next": N,
                             "upload_ms": X, "upload_answer_ms": X, "processing_polls": N,
                             "max_upload_bytes": B, "reset": true}

``upload_ms`` delays an upload before the video is stored; ``upload_answer_ms`` after it is
stored and before the answer (the window in which a client can die without the video id).
    GET  /publish/_control  the switches
    GET  /publish/_log      uploads (with start and end times), status checks and publishes
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .routing import PlatformError, Request, route

AREA = "publishing"
PLATFORMS = ("xiaohongshu", "tencent", "douyin", "kuaishou", "bilibili", "tiktok", "youtube")
PLATFORM = "(?P<platform>[a-z]+)"
CHUNK = 64 * 1024
MAX_FIELD = 64 * 1024
LOGIN_EXPIRED = "Login expired"
SWITCHES = (
    "upload_fail_next",
    "upload_ms",
    "upload_answer_ms",
    "processing_polls",
    "max_upload_bytes",
)


@dataclass
class Video:
    video_id: str
    platform: str
    account_id: str
    filename: str
    size: int
    sha256: str
    polls: int = 0
    published: dict | None = None


@dataclass
class PublishingArea:
    """Switches, uploaded videos and the request log of the publishing area."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    videos: dict[str, Video] = field(default_factory=dict)
    # (platform, account, Idempotency-Key) -> video id of the upload that first used the key.
    upload_keys: dict[tuple[str, str, str], str] = field(default_factory=dict)
    log: list[dict] = field(default_factory=list)
    expired: set[str] = field(default_factory=set)
    expire_after_upload: set[str] = field(default_factory=set)
    upload_fail_next: int = 0
    upload_ms: int = 0
    upload_answer_ms: int = 0
    processing_polls: int = 2
    max_upload_bytes: int = 1 << 30

    def apply(self, changes: dict) -> None:
        with self.lock:
            if changes.get("reset"):
                self.videos.clear()
                self.upload_keys.clear()
                self.log.clear()
                self.expired.clear()
                self.expire_after_upload.clear()
                self.upload_fail_next = self.upload_ms = self.upload_answer_ms = 0
                self.processing_polls = 2
                self.max_upload_bytes = 1 << 30
            for name in SWITCHES:
                if name in changes:
                    setattr(self, name, max(0, int(changes[name])))
            self.expired.update(_names(changes.get("expire_login")))
            self.expired.difference_update(_names(changes.get("restore_login")))
            self.expire_after_upload.update(_names(changes.get("expire_after_upload")))

    def switches(self) -> dict:
        with self.lock:
            return {
                "expired_logins": sorted(self.expired),
                "expire_after_upload": sorted(self.expire_after_upload),
                "upload_fail_next": self.upload_fail_next,
                "upload_ms": self.upload_ms,
                "upload_answer_ms": self.upload_answer_ms,
                "processing_polls": self.processing_polls,
                "max_upload_bytes": self.max_upload_bytes,
            }

    def record(self, **entry: Any) -> None:
        with self.lock:
            self.log.append(entry)

    def uploads(self) -> list[dict]:
        """Uploads that stored (or failed to store) a video; replays of a key are not counted."""
        with self.lock:
            return [dict(e) for e in self.log if e["event"] == "upload"]

    def replayed_video(self, platform: str, account: str, key: str) -> Video | None:
        with self.lock:
            video_id = self.upload_keys.get((platform, account, key)) if key else None
            return self.videos.get(video_id) if video_id else None


def _names(value: Any) -> list[str]:
    if not value:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def area_of(server: Any) -> PublishingArea:
    """The area's state on a running ``SandboxPlatform`` (tests use it in-process)."""
    return server.area_state(AREA, PublishingArea)


def _area(request: Request) -> PublishingArea:
    return request.state(AREA, PublishingArea)


def _account(request: Request, area: PublishingArea) -> str:
    account = request.account_id
    if not account:
        raise PlatformError(400, "X-Account-Id is required")
    with area.lock:
        expired = account in area.expired
    if expired:
        raise PlatformError(401, LOGIN_EXPIRED)
    return account


def _platform(request: Request) -> str:
    platform = request.params["platform"]
    if platform not in PLATFORMS:
        raise PlatformError(404, f"Unknown platform {platform!r}")
    return platform


def _video(request: Request, area: PublishingArea, platform: str, account: str) -> Video:
    with area.lock:
        video = area.videos.get(request.params["video_id"])
    if video is None or video.platform != platform or video.account_id != account:
        raise PlatformError(404, "Video not found")
    return video


# --- multipart, streamed --------------------------------------------------------------------


def _boundary(request: Request) -> bytes:
    content_type = request.headers.get("Content-Type", "")
    kind, _, rest = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        raise PlatformError(400, "Uploads must be multipart/form-data")
    for part in rest.split(";"):
        name, _, value = part.strip().partition("=")
        if name.lower() == "boundary" and value:
            return value.strip('"').encode()
    raise PlatformError(400, "multipart boundary is missing")


def _part_headers(raw: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in raw.decode("utf-8", "replace").split("\r\n"):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    disposition = headers.get("content-disposition", "")
    for item in disposition.split(";")[1:]:
        key, _, value = item.strip().partition("=")
        headers[f"param:{key.lower()}"] = value.strip('"')
    return headers


def read_multipart(rfile: Any, length: int, boundary: bytes) -> dict[str, dict]:
    """Read a multipart body of ``length`` bytes from ``rfile`` in chunks, keeping no file part
    in memory: a file part is summed up as its name, size and SHA-256."""
    delimiter = b"\r\n--" + boundary
    remaining = length
    buffer = b"\r\n"  # so the first boundary looks like every other one
    parts: dict[str, dict] = {}
    current: dict | None = None
    done = False

    def more() -> bool:
        nonlocal buffer, remaining
        if remaining <= 0:
            return False
        chunk = rfile.read(min(CHUNK, remaining))
        if not chunk:
            raise PlatformError(400, "Body ended early")
        remaining -= len(chunk)
        buffer += chunk
        return True

    def feed(data: bytes) -> None:
        if current is None or not data:
            return
        current["size"] += len(data)
        if "sha" in current:
            current["sha"].update(data)
        elif current["size"] > MAX_FIELD:
            raise PlatformError(400, "Form field too large")
        else:
            current["value"] += data

    try:
        while not done:
            at = buffer.find(delimiter)
            if at < 0:
                keep = len(delimiter) + 4
                feed(buffer[:-keep])
                buffer = buffer[-keep:]
                if not more():
                    raise PlatformError(400, "Malformed multipart body")
                continue
            feed(buffer[:at])
            if current is not None:
                parts[current["name"]] = current
                current = None
            buffer = buffer[at + len(delimiter) :]
            while len(buffer) < 2 and more():
                pass
            if buffer[:2] == b"--":
                done = True
                break
            while b"\r\n\r\n" not in buffer:
                if len(buffer) > MAX_FIELD or not more():
                    raise PlatformError(400, "Malformed multipart part headers")
            raw, buffer = buffer[2:].split(b"\r\n\r\n", 1)
            headers = _part_headers(raw)
            current = {"name": headers.get("param:name", ""), "size": 0, "value": b""}
            if "param:filename" in headers:
                current.update(filename=headers["param:filename"], sha=hashlib.sha256())
    finally:
        # Whatever happened, read the rest (an epilogue, or what a bad part left) so the
        # keep-alive connection stays in step.
        while remaining > 0:
            chunk = rfile.read(min(CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
    return parts


# --- routes ---------------------------------------------------------------------------------


@route("POST", rf"/publish/{PLATFORM}/uploads")
def upload(request: Request) -> tuple[int, dict]:
    area = _area(request)
    platform = _platform(request)
    account = _account(request, area)
    started = time.time()
    length = request.content_length
    with area.lock:
        limit, delay, answer_delay = area.max_upload_bytes, area.upload_ms, area.upload_answer_ms
    if length > limit:
        raise PlatformError(413, f"Upload larger than {limit} bytes")
    boundary = _boundary(request)
    request._body = b""  # read_multipart consumes the body, even when it fails
    key = request.headers.get("Idempotency-Key", "")
    replayed = area.replayed_video(platform, account, key)
    if replayed is not None:
        _discard(request.rfile, length)
        area.record(event="upload_replayed", platform=platform, account_id=account, key=key)
        return 200, {"data": _upload_data(replayed)}
    parts = read_multipart(request.rfile, length, boundary)
    file_part = parts.get("file")
    if not file_part or "sha" not in file_part:
        raise PlatformError(400, "The multipart field 'file' is missing")
    if file_part["size"] == 0:
        raise PlatformError(400, "The uploaded file is empty")
    if delay:
        time.sleep(delay / 1000)
    entry = {
        "event": "upload",
        "platform": platform,
        "account_id": account,
        "filename": file_part["filename"],
        "size": file_part["size"],
        "sha256": file_part["sha"].hexdigest(),
        "started": started,
    }
    with area.lock:
        failing = area.upload_fail_next > 0
        if failing:
            area.upload_fail_next -= 1
    if failing:
        area.record(**entry, ended=time.time(), status=500, video_id="")
        raise PlatformError(500, "Upload failed: storage unavailable")
    video = Video(
        video_id=uuid.uuid4().hex[:16],
        platform=platform,
        account_id=account,
        filename=file_part["filename"],
        size=file_part["size"],
        sha256=entry["sha256"],
    )
    with area.lock:
        area.videos[video.video_id] = video
        if key:
            area.upload_keys[(platform, account, key)] = video.video_id
        if account in area.expire_after_upload:
            area.expire_after_upload.discard(account)
            area.expired.add(account)
    area.record(**entry, ended=time.time(), status=201, video_id=video.video_id)
    if answer_delay:
        time.sleep(answer_delay / 1000)
    return 201, {"data": _upload_data(video)}


def _upload_data(video: Video) -> dict:
    return {"video_id": video.video_id, "size": video.size, "sha256": video.sha256}


def _discard(rfile: Any, length: int) -> None:
    """Read and drop a body the answer does not need, so the connection stays usable."""
    while length > 0:
        chunk = rfile.read(min(CHUNK, length))
        if not chunk:
            return
        length -= len(chunk)


@route("GET", rf"/publish/{PLATFORM}/videos/(?P<video_id>[0-9a-f]{{1,32}})")
def video_status(request: Request) -> dict:
    area = _area(request)
    platform = _platform(request)
    account = _account(request, area)
    video = _video(request, area, platform, account)
    with area.lock:
        video.polls += 1
        if video.published:
            status = "published"
        elif video.polls > area.processing_polls:
            status = "ready"
        else:
            status = "processing"
    area.record(
        event="status",
        platform=platform,
        account_id=account,
        video_id=video.video_id,
        status=status,
        at=time.time(),
    )
    return {"data": {"video_id": video.video_id, "status": status}}


@route("POST", rf"/publish/{PLATFORM}/videos/(?P<video_id>[0-9a-f]{{1,32}})/publish")
def publish(request: Request) -> dict:
    area = _area(request)
    platform = _platform(request)
    account = _account(request, area)
    body = request.json()
    video = _video(request, area, platform, account)
    title = body.get("title")
    if not isinstance(title, str) or not title.strip():
        raise PlatformError(400, "title is required")
    schedule_time = body.get("schedule_time")
    if schedule_time is not None:
        try:
            datetime.fromisoformat(schedule_time)
        except (TypeError, ValueError):
            raise PlatformError(400, "schedule_time must be an ISO 8601 time or null") from None
    options = {key: value for key, value in body.items() if key not in ("title", "tags")}
    with area.lock:
        if video.published is None:
            if video.polls <= area.processing_polls:
                raise PlatformError(409, "Video is still processing")
            video.published = {
                **options,
                "status": "published",
                "url": f"https://{platform}.example/v/{video.video_id}",
                "title": title,
                "tags": body.get("tags") or [],
                "schedule_time": schedule_time,
            }
        published = dict(video.published)
    area.record(
        event="publish",
        platform=platform,
        account_id=account,
        video_id=video.video_id,
        schedule_time=published["schedule_time"],
        at=time.time(),
    )
    return {"data": {"video_id": video.video_id, **published}}


@route("POST", r"/publish/_control")
def control(request: Request) -> dict:
    area = _area(request)
    try:
        area.apply(request.json())
    except (TypeError, ValueError) as exc:
        raise PlatformError(400, f"Bad control request: {exc}") from None
    return area.switches()


@route("GET", r"/publish/_control")
def switches(request: Request) -> dict:
    return _area(request).switches()


@route("GET", r"/publish/_log")
def request_log(request: Request) -> list:
    area = _area(request)
    with area.lock:
        return json.loads(json.dumps(area.log))
