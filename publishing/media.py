"""Storing uploaded videos under ``PUBLISHING["MEDIA_ROOT"]``: checked first, written once.

An upload is refused (and nothing is written) when it is empty, larger than
``MAX_UPLOAD_BYTES``, declared as a type outside ``ALLOWED_CONTENT_TYPES``, or when its first
bytes are not a video container of that type (a renamed text file is not a video).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.utils.text import get_valid_filename

from .models import VideoFile

CHUNK = 1024 * 1024
# File systems cap a name at 255 bytes (some at 143), and a CJK character is 3 bytes in UTF-8:
# the name on disk keeps at most this many bytes of the client's name after its uuid prefix
# (the full name stays in ``VideoFile.filename``).
STORED_NAME_BYTES = 100
MAX_SUFFIX_BYTES = 16
MAX_NAME_CHARS = 255  # the record's column (VideoFile.filename)
# ISO base media (mp4, mov) has "ftyp" (or an early "moov"/"mdat"/"wide"/"free" atom in old
# QuickTime files) at bytes 4-8; Matroska and WebM start with the EBML magic number.
ISO_ATOMS = (b"ftyp", b"moov", b"mdat", b"wide", b"free")
EBML_MAGIC = b"\x1a\x45\xdf\xa3"
CONTAINERS = {
    "video/mp4": "iso",
    "video/quicktime": "iso",
    "video/x-m4v": "iso",
    "video/webm": "ebml",
    "video/x-matroska": "ebml",
}


class UploadRejected(Exception):
    """A bad upload: ``field`` names what is wrong, ``status`` is the HTTP status to answer."""

    def __init__(self, field: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.status = status


def max_upload_bytes() -> int:
    return int(settings.PUBLISHING["MAX_UPLOAD_BYTES"])


def media_root() -> Path:
    return Path(settings.PUBLISHING["MEDIA_ROOT"])


def container_of(head: bytes) -> str | None:
    """Which container family the first bytes of a file belong to, if any."""
    if head[:4] == EBML_MAGIC:
        return "ebml"
    if len(head) >= 8 and head[4:8] in ISO_ATOMS:
        return "iso"
    return None


def check_upload(upload: UploadedFile | None) -> str:
    """Validate an uploaded file without writing anything; return its content type."""
    if upload is None:
        raise UploadRejected(
            "file", "No file in the request: send it as the multipart field 'file'."
        )
    if not upload.name or not get_valid_filename_or_none(upload.name):
        raise UploadRejected("file", "The file has no usable name.")
    if not upload.size:  # 0, or None from an upload handler that did not count it
        raise UploadRejected("file", "The file is empty.")
    limit = max_upload_bytes()
    if upload.size > limit:
        raise UploadRejected("file", f"The file is larger than the limit of {limit} bytes.", 413)
    content_type = (upload.content_type or "").split(";")[0].strip().lower()
    allowed = [t.lower() for t in settings.PUBLISHING["ALLOWED_CONTENT_TYPES"]]
    if content_type not in allowed:
        raise UploadRejected(
            "file",
            f"Content type {content_type or '(none)'!r} is not allowed; allowed: "
            f"{', '.join(allowed)}.",
            415,
        )
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    expected = CONTAINERS.get(content_type)
    found = container_of(head)
    if found is None or (expected is not None and found != expected):
        raise UploadRejected("file", f"The file's content is not a {content_type} video.", 415)
    return content_type


def get_valid_filename_or_none(name: str) -> str | None:
    """The name made safe for a file system (Django's rules), at most ``MAX_NAME_CHARS`` long
    with its extension kept; ``None`` when nothing usable is left."""
    try:
        valid = get_valid_filename(os.path.basename(name))
    except Exception:
        return None
    if len(valid) <= MAX_NAME_CHARS:
        return valid
    stem, suffix = os.path.splitext(valid)
    if len(suffix) > MAX_SUFFIX_BYTES:
        return valid[:MAX_NAME_CHARS]
    return stem[: MAX_NAME_CHARS - len(suffix)] + suffix


def short_name(name: str, limit: int = STORED_NAME_BYTES) -> str:
    """``name`` cut to ``limit`` UTF-8 bytes on a character boundary, keeping a short extension."""
    stem, suffix = os.path.splitext(name)
    if len(suffix.encode()) > MAX_SUFFIX_BYTES:
        stem, suffix = name, ""
    kept = stem.encode()[: limit - len(suffix.encode())].decode(errors="ignore")
    return f"{kept}{suffix}"


def store_upload(owner: User, upload: UploadedFile, *, filename: str = "") -> VideoFile:
    """Check ``upload``, copy it under the media root chunk by chunk, and record it.

    ``filename`` (optional) renames it, keeping the upload's extension, as social-auto-upload's
    ``/uploadSave`` does. Raises ``UploadRejected``; on any failure no file and no row remain.
    """
    content_type = check_upload(upload)
    original = get_valid_filename_or_none(upload.name or "") or "video"
    if filename:
        suffix = Path(original).suffix
        renamed = get_valid_filename_or_none(filename + suffix)
        if not renamed:
            raise UploadRejected("filename", "The file name has no usable characters.")
        original = renamed
    root = media_root()
    root.mkdir(parents=True, exist_ok=True)
    stored_name = f"{uuid.uuid4().hex}_{short_name(original)}"
    final = root / stored_name
    partial = root / f".{stored_name}.part"
    digest = hashlib.sha256()
    size = 0
    try:
        with partial.open("wb") as out:
            for chunk in upload.chunks(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        os.replace(partial, final)
        return VideoFile.objects.create(
            owner=owner,
            filename=original,
            stored_name=stored_name,
            size=size,
            content_type=content_type,
            sha256=digest.hexdigest(),
        )
    except BaseException:
        partial.unlink(missing_ok=True)
        final.unlink(missing_ok=True)
        raise


def delete_stored_file(video: VideoFile) -> None:
    """Remove the file from disk (the row is the caller's)."""
    video.path.unlink(missing_ok=True)
