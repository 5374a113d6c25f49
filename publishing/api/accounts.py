"""social-auto-upload's account endpoints beyond the list: checking every login with the
platform (``GET /getValidAccounts``) and the credentials file an account is logged in with
(``POST /uploadCookie``, ``GET /downloadCookie?filePath=``).

Credentials are stored encrypted (``PlatformAccount.credentials``); the download hands them only
to the account's owner, found by the account's ``filePath``. Another user's account is "not
found".
"""

from __future__ import annotations

import json

from django.http import HttpResponse, HttpResponseBase
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from publishing.api.envelope import EnvelopeSerializer, SocialAutoUploadView, fail, ok
from publishing.api.serializers import UploadCookieInput, account_row
from publishing.login_checks import check_logins
from publishing.models import PlatformAccount
from publishing.platforms import platform_names_matching
from taskcenter.api.authentication import authenticated_user
from taskcenter.api.parsers import loads

ENVELOPE = {200: EnvelopeSerializer, 400: EnvelopeSerializer, 404: EnvelopeSerializer}
# A browser's storage state (cookies and local storage of a creator site) is rarely past 200 KiB.
MAX_COOKIE_FILE = 512 * 1024
MAX_FILE_PATH = 64  # PlatformAccount.file_path's column


class ValidAccountListView(SocialAutoUploadView):
    @extend_schema(responses=ENVELOPE)
    def get(self, request: Request) -> Response:
        """``GET /getValidAccounts``: your accounts as ``/getAccounts`` rows, each login first
        checked with its platform (status 1 when the platform accepts it, else 0). When the
        platform cannot answer, the statuses stay as they were and ``msg`` says why."""
        owner = authenticated_user(request)
        accounts = list(PlatformAccount.objects.filter(owner=owner).order_by("id"))
        found = check_logins(accounts)
        msg = None
        if found.unchecked:
            msg = f"{found.unchecked} account(s) could not be checked: {found.problem}"
        return ok([account_row(account) for account in found.accounts], msg)


class UploadCookieView(SocialAutoUploadView):
    parser_classes = [MultiPartParser]
    max_body = MAX_COOKIE_FILE + 64 * 1024

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "id": {"type": "integer"},
                    "platform": {"type": "string"},
                },
                "required": ["file", "id", "platform"],
            }
        },
        responses={**ENVELOPE, 413: EnvelopeSerializer},
    )
    def post(self, request: Request) -> Response:
        """``POST /uploadCookie`` (multipart ``file``, ``id``, ``platform``): log the account in
        with a credentials file (a browser storage state, JSON); stored encrypted."""
        fields = UploadCookieInput(data=request.data)
        fields.is_valid(raise_exception=True)
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationError({"file": ["No file: send the credentials as the field 'file'."]})
        if not (upload.name or "").lower().endswith(".json"):
            raise ValidationError({"file": ["The credentials file must be a .json file."]})
        if upload.size and upload.size > MAX_COOKIE_FILE:
            return fail(
                413, f"file: larger than the limit of {MAX_COOKIE_FILE} bytes", field="file"
            )
        try:
            credentials = loads(upload.read(MAX_COOKIE_FILE + 1).decode("utf-8-sig"))
            json.dumps(credentials, allow_nan=False)  # NaN and Infinity are not JSON either
        except ValueError:  # not UTF-8, not JSON, or nested too deep
            raise ValidationError({"file": ["The file is not JSON."]}) from None
        if not isinstance(credentials, dict) or not credentials:
            raise ValidationError(
                {"file": ["The file must hold a JSON object (a browser storage state)."]}
            )
        owner = authenticated_user(request)
        account_id = fields.validated_data["id"]
        account = PlatformAccount.objects.filter(owner=owner, pk=account_id).first()
        if account is None:
            return fail(404, f"id: account {account_id} not found", field="id")
        platform = fields.validated_data["platform"]
        if account.platform_name not in platform_names_matching(platform):
            raise ValidationError(
                {
                    "platform": [
                        f"Account {account_id} is on {account.platform_label}, not {platform}."
                    ]
                }
            )
        PlatformAccount.objects.filter(pk=account.pk).update(credentials=credentials)
        return ok(None, "Cookie文件上传成功")


class DownloadCookieView(SocialAutoUploadView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "filePath",
                {"type": "string", "minLength": 1},
                required=True,
                description="The account's `filePath`.",
            )
        ],
        responses={(200, "application/json"): OpenApiTypes.OBJECT, **ENVELOPE},
    )
    def get(self, request: Request) -> HttpResponseBase:
        """``GET /downloadCookie?filePath=``: your account's credentials, as a JSON file."""
        file_path = str(request.query_params.get("filePath", ""))
        if not file_path:
            return fail(400, "filePath: This field is required.", field="filePath")
        owner = authenticated_user(request)
        # A name no account can have is not looked up (PostgreSQL refuses NUL in a query).
        possible = "\x00" not in file_path and len(file_path) <= MAX_FILE_PATH
        account = (
            possible and PlatformAccount.objects.filter(owner=owner, file_path=file_path).first()
        )
        if not account:
            return fail(404, f"filePath: account {file_path!r} not found", field="filePath")
        if not account.credentials:
            return fail(404, "filePath: the account has no credentials yet", field="filePath")
        response = HttpResponse(
            json.dumps(account.credentials, indent=2),
            content_type="application/json; charset=utf-8",
        )
        response["Content-Disposition"] = content_disposition_header(True, account.file_path)
        response["Cache-Control"] = "no-store"
        return response
