"""Serving the uploaded videos back to their owner: social-auto-upload's preview
(``GET /getFile?filename=``, which its front end puts in a ``<video src>``) and its front end's
download link (``GET /download/<file_path>``).

A file is found by its stored name among the caller's own files, never by joining the name onto
a directory, so no name reaches outside the media root and another user's file is "not found".
Single byte ranges are answered (206) so that a player can seek.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from django.http import FileResponse, HttpResponseBase, StreamingHttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request

from publishing.api.envelope import EnvelopeSerializer, SocialAutoUploadView, fail
from publishing.models import VideoFile
from taskcenter.api.authentication import authenticated_user

CHUNK = 256 * 1024
MAX_STORED_NAME = 300  # VideoFile.stored_name's column
# One range, as players ask: "bytes=0-", "bytes=100-199" or a suffix "bytes=-500".
SINGLE_RANGE = re.compile(r"bytes=(\d{0,18})-(\d{0,18})")
FILE_RESPONSES = {
    (200, "video/*"): OpenApiTypes.BINARY,
    (206, "video/*"): OpenApiTypes.BINARY,
    404: EnvelopeSerializer,
    400: EnvelopeSerializer,
    416: EnvelopeSerializer,
}


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) byte that a ``Range`` header asks of a ``size``-byte file;
    None for the whole file (no header, or one this does not serve, such as several ranges).
    Raises ``ValueError`` when the range lies outside the file (416)."""
    match = SINGLE_RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        length = int(last)
        if length == 0:
            raise ValueError("empty suffix range")
        return max(0, size - length), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise ValueError("range outside the file")
    return start, end


def _read(handle: IO[bytes], length: int) -> Iterator[bytes]:
    with handle:
        while length > 0:
            chunk = handle.read(min(CHUNK, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk


def file_response(
    request: Request, path: Path, *, content_type: str, filename: str, as_attachment: bool
) -> HttpResponseBase:
    """The file, or the byte range the request asks for (206), with ``Accept-Ranges``."""
    size = path.stat().st_size
    disposition = content_disposition_header(as_attachment, filename)
    try:
        wanted = byte_range(request.META.get("HTTP_RANGE", ""), size)
    except ValueError:
        refused = fail(416, f"Range: the file has {size} bytes", field="Range")
        refused["Content-Range"] = f"bytes */{size}"
        return refused
    response: HttpResponseBase
    if wanted is None:
        response = FileResponse(
            path.open("rb"), content_type=content_type, as_attachment=as_attachment
        )
    else:
        start, end = wanted
        handle = path.open("rb")
        handle.seek(start)
        response = StreamingHttpResponse(
            _read(handle, end - start + 1), status=206, content_type=content_type
        )
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
    if disposition:
        response["Content-Disposition"] = disposition
    response["Accept-Ranges"] = "bytes"
    return response


def _serve(request: Request, stored_name: str, field: str, *, as_attachment: bool):
    if not stored_name:
        return fail(400, f"{field}: This field is required.", field=field)
    owner = authenticated_user(request)
    # A name no stored file can have is not looked up (PostgreSQL refuses NUL in a query).
    possible = "\x00" not in stored_name and len(stored_name) <= MAX_STORED_NAME
    video = possible and VideoFile.objects.filter(owner=owner, stored_name=stored_name).first()
    if not video:
        return fail(404, f"{field}: file {stored_name!r} not found", field=field)
    if not video.path.is_file():
        return fail(404, f"{field}: the file {stored_name!r} is no longer on disk", field=field)
    return file_response(
        request,
        video.path,
        content_type=video.content_type,
        filename=video.filename,
        as_attachment=as_attachment,
    )


class FilePreviewView(SocialAutoUploadView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "filename",
                {"type": "string", "minLength": 1},
                required=True,
                description="The stored `file_path`.",
            )
        ],
        responses=FILE_RESPONSES,
    )
    def get(self, request: Request) -> HttpResponseBase:
        """``GET /getFile?filename=<file_path>``: one of your videos, to play (ranges served)."""
        return _serve(
            request, str(request.query_params.get("filename", "")), "filename", as_attachment=False
        )


class FileDownloadView(SocialAutoUploadView):
    @extend_schema(responses=FILE_RESPONSES)
    def get(self, request: Request, file_path: str) -> HttpResponseBase:
        """``GET /download/<file_path>``: one of your videos, as a download under its name."""
        return _serve(request, file_path, "file_path", as_attachment=True)
