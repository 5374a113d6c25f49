"""social-auto-upload's endpoints at its own paths, in its ``{code, msg, data}`` envelope.

Thin, as the canonical API: validate, call one ``taskcenter.lifecycle`` function per record,
serialize. Here: files, accounts and records; the publish endpoints are in ``publish``, the
login checks and credentials files in ``accounts``, serving files back in ``files``. A user sees
and acts on their own files, accounts and records; staff see every record. Another user's record
is "not found".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.db.models.fields.json import KT
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from publishing import media
from publishing.api.csrf import UnsafeGetMixin
from publishing.api.envelope import (
    EnvelopeSerializer,
    RecordPagination,
    SocialAutoUploadView,
    fail,
    ok,
    transition_refused,
    upload_body_limit,
)
from publishing.api.serializers import (
    CANCELLED_WORD,
    PENDING_WORD,
    AccountInput,
    AccountUpdateInput,
    IdInput,
    RecordQuery,
    RecordTargetInput,
    StatusUpdateInput,
    account_data,
    account_row,
    file_data,
    record_data,
)
from publishing.models import LoginStatus, PlatformAccount, PublishTaskRecord, VideoFile
from publishing.platforms import platform_names_matching
from taskcenter import lifecycle
from taskcenter.api.authentication import authenticated_user
from taskcenter.api.parsers import SafeJSONParser
from taskcenter.api.status_words import PUBLISHING, statuses_for
from taskcenter.errors import InvalidTransition
from taskcenter.models import ACTIVE_STATUSES, EventVerb, Task, TaskEvent

ENVELOPE = {200: EnvelopeSerializer, 400: EnvelopeSerializer, 404: EnvelopeSerializer}
JSON_OR_FORM = [SafeJSONParser, FormParser, MultiPartParser]


def validated(serializer_class: type, data: Any) -> dict:
    """``data`` checked by ``serializer_class``; a 400 in the envelope naming the field if not."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def records_for(user) -> QuerySet[PublishTaskRecord]:
    """The records ``user`` may see, each with the reason it was cancelled (if it was)."""
    reasons = TaskEvent.objects.filter(
        task_id=OuterRef("task_id"), verb=EventVerb.CANCELLED
    ).order_by("-at", "-id")
    records = PublishTaskRecord.objects.visible_to(user).select_related("task")
    return records.annotate(cancel_reason=Subquery(reasons.values(reason=KT("data__reason"))[:1]))


# --- files ----------------------------------------------------------------------------------


UPLOAD_SCHEMA = {
    "multipart/form-data": {
        "type": "object",
        "properties": {
            "file": {"type": "string", "format": "binary"},
            "filename": {"type": "string", "description": "/uploadSave only: a new name."},
        },
        "required": ["file"],
    }
}


class UploadView(SocialAutoUploadView):
    """``POST /upload``: store a video (multipart ``file``); ``data`` is its stored name (the
    ``file_path`` a publish's ``fileList`` names), as social-auto-upload's publish center
    expects."""

    parser_classes = [MultiPartParser]

    @property
    def max_body(self) -> int:  # type: ignore[override]
        return upload_body_limit()

    def store(self, request: Request, filename: str = "") -> VideoFile:
        upload = request.FILES.get("file")
        return media.store_upload(authenticated_user(request), upload, filename=filename)

    @extend_schema(
        request=UPLOAD_SCHEMA,
        responses={**ENVELOPE, 413: EnvelopeSerializer, 415: EnvelopeSerializer},
    )
    def post(self, request: Request) -> Response:
        """Upload a video; checks size, type and content; answers its stored name."""
        return ok(self.store(request).stored_name, "File uploaded successfully")


class UploadSaveView(UploadView):
    @extend_schema(
        request=UPLOAD_SCHEMA,
        responses={**ENVELOPE, 413: EnvelopeSerializer, 415: EnvelopeSerializer},
    )
    def post(self, request: Request) -> Response:
        """``POST /uploadSave`` (multipart ``file``, optional ``filename``): store a video in
        the material library; answers the file, with social-auto-upload's ``filepath``."""
        filename = str(request.data.get("filename") or "").strip()[:200]
        video = self.store(request, filename)
        return ok(
            {**file_data(video), "filepath": video.stored_name},
            "File uploaded and saved successfully",
        )


class FileListView(SocialAutoUploadView):
    @extend_schema(responses=ENVELOPE)
    def get(self, request: Request) -> Response:
        """``GET /getFiles``: the user's uploaded videos, newest first."""
        owner = authenticated_user(request)
        files = VideoFile.objects.filter(owner=owner).order_by("-created_at", "-id")[:1000]
        return ok([file_data(video) for video in files])


DELETE_RESPONSES = {**ENVELOPE, 403: EnvelopeSerializer, 409: EnvelopeSerializer}


class FileDeleteView(UnsafeGetMixin, SocialAutoUploadView):
    parser_classes = JSON_OR_FORM

    @extend_schema(parameters=[IdInput], responses=DELETE_RESPONSES)
    def get(self, request: Request) -> Response:
        """``GET /deleteFile?id=``, as social-auto-upload's front end deletes (under a browser
        session, with the CSRF header a POST needs)."""
        return self.delete_file(request, validated(IdInput, request.query_params)["id"])

    @extend_schema(request=IdInput, responses=DELETE_RESPONSES)
    def post(self, request: Request) -> Response:
        """``POST /deleteFile`` {id}: delete a video that no queued or running record uses."""
        return self.delete_file(request, validated(IdInput, request.data)["id"])

    def delete_file(self, request: Request, file_id: int) -> Response:
        video = VideoFile.objects.filter(owner=authenticated_user(request), pk=file_id).first()
        if video is None:
            return fail(404, f"id: file {file_id} not found", field="id")
        with transaction.atomic():
            busy = video.publish_records.filter(task__status__in=ACTIVE_STATUSES).exists()
            if busy:
                return fail(
                    409, "id: the file is being published; cancel those records first", field="id"
                )
            video.delete()
        media.delete_stored_file(video)
        return ok({"id": file_id, "filename": video.filename}, "File deleted successfully")


# --- accounts -------------------------------------------------------------------------------


class AccountListView(SocialAutoUploadView):
    @extend_schema(responses=ENVELOPE)
    def get(self, request: Request) -> Response:
        """``GET /getAccounts``: your accounts as social-auto-upload's rows, ``[id, type,
        filePath, userName, status]``, without asking the platforms (``/getValidAccounts``
        does)."""
        accounts = PlatformAccount.objects.filter(owner=authenticated_user(request))
        return ok([account_row(account) for account in accounts.order_by("id")], None)


class AccountCreateView(SocialAutoUploadView):
    parser_classes = JSON_OR_FORM

    @extend_schema(request=AccountInput, responses={**ENVELOPE, 409: EnvelopeSerializer})
    def post(self, request: Request) -> Response:
        """``POST /addAccount`` {type, userName, name, credentials}."""
        data = validated(AccountInput, request.data)
        try:
            with transaction.atomic():
                account = PlatformAccount.objects.create(
                    owner=authenticated_user(request),
                    platform_type=data["type"],
                    account_name=data["userName"],
                    name=data["name"],
                    credentials=data["credentials"],
                )
        except IntegrityError:
            return fail(
                409, "userName: you already have this account on this platform", field="userName"
            )
        return ok(account_data(account), "account added successfully")


class AccountUpdateView(SocialAutoUploadView):
    parser_classes = JSON_OR_FORM

    @extend_schema(request=AccountUpdateInput, responses={**ENVELOPE, 409: EnvelopeSerializer})
    def post(self, request: Request) -> Response:
        """``POST /updateUserinfo`` {id, type, userName, name, credentials}.

        New credentials are a new login: the account counts as logged in again.
        """
        serializer = AccountUpdateInput(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "id" not in data:
            raise ValidationError({"id": ["This field is required."]})
        owner = authenticated_user(request)
        account = PlatformAccount.objects.filter(owner=owner, pk=data["id"]).first()
        if account is None:
            return fail(404, f"id: account {data['id']} not found", field="id")
        changes: dict[str, Any] = {}
        for source, target in (
            ("type", "platform_type"),
            ("userName", "account_name"),
            ("name", "name"),
            ("credentials", "credentials"),
        ):
            if source in data:
                changes[target] = data[source]
        if "credentials" in changes:
            changes["login_status"] = LoginStatus.VALID
        try:
            with transaction.atomic():
                PlatformAccount.objects.filter(pk=account.pk).update(**changes)
        except IntegrityError:
            return fail(
                409, "userName: you already have this account on this platform", field="userName"
            )
        account.refresh_from_db()
        return ok(account_data(account), "account update successfully")


class AccountDeleteView(UnsafeGetMixin, SocialAutoUploadView):
    parser_classes = JSON_OR_FORM

    @extend_schema(parameters=[IdInput], responses=DELETE_RESPONSES)
    def get(self, request: Request) -> Response:
        """``GET /deleteAccount?id=``, as social-auto-upload's front end deletes (under a
        browser session, with the CSRF header a POST needs)."""
        return self.delete_account(request, validated(IdInput, request.query_params)["id"])

    @extend_schema(request=IdInput, responses=DELETE_RESPONSES)
    def post(self, request: Request) -> Response:
        """``POST /deleteAccount`` {id}: delete an account and its credentials; refused while
        one of its records is waiting or publishing (finished records keep its name)."""
        return self.delete_account(request, validated(IdInput, request.data)["id"])

    def delete_account(self, request: Request, account_id: int) -> Response:
        owner = authenticated_user(request)
        account = PlatformAccount.objects.filter(owner=owner, pk=account_id).first()
        if account is None:
            return fail(404, f"id: account {account_id} not found", field="id")
        # A publish queued between this check and the delete is not lost silently: its record
        # keeps the account's name and fails with "the account was deleted".
        if account.publish_records.filter(task__status__in=ACTIVE_STATUSES).exists():
            return fail(
                409, "id: the account is publishing; cancel its waiting records first", field="id"
            )
        account.delete()
        return ok(None, "account deleted successfully")


# --- records --------------------------------------------------------------------------------


class RecordListView(SocialAutoUploadView):
    @extend_schema(parameters=[RecordQuery], responses=ENVELOPE)
    def get(self, request: Request) -> Response:
        """``GET /getPublishTaskRecords``: newest first, filtered, paged."""
        query = validated(RecordQuery, request.query_params)
        records = records_for(request.user)
        if query.get("status"):
            records = records.filter(task__status__in=statuses_for(query["status"], PUBLISHING))
        if query.get("platform_name"):
            records = records.filter(
                platform_name__in=platform_names_matching(query["platform_name"])
            )
        if query.get("account_name"):
            records = records.filter(account_name__icontains=query["account_name"])
        if query.get("filename"):
            records = records.filter(filename__icontains=query["filename"])
        if query.get("task_id"):
            records = records.filter(batch_id=query["task_id"])
        pagination = RecordPagination()
        items = pagination.paginate(
            records.order_by("-create_time", "-id"), number=query["page"], size=query["page_size"]
        )
        return ok(pagination.page_body([record_data(r) for r in items]))


def _record_or_none(request: Request, record_id: int) -> PublishTaskRecord | None:
    return records_for(request.user).filter(pk=record_id).first()


def _act_on_batch(request: Request, batch_id: str, transition, allowed, **kwargs: Any) -> Response:
    """Apply ``transition`` to every record of a batch whose status allows it, in one go."""
    records = list(records_for(request.user).filter(batch_id=batch_id).order_by("pk"))
    if not records:
        return fail(404, f"task_id: batch {batch_id!r} not found", field="task_id")
    changed: list[int] = []
    with transaction.atomic():
        for record in records:
            if record.task.status not in allowed:
                continue
            try:
                transition(record.task_id, actor=request.user, **kwargs)
            except InvalidTransition:
                continue  # finished (or moved) since it was read: it is among the skipped
            changed.append(record.pk)
    return ok(
        {
            "task_id": batch_id,
            "changed": len(changed),
            "skipped": len(records) - len(changed),
            "ids": changed,
        }
    )


class _RecordActionView(SocialAutoUploadView):
    """``{id}`` or a whole batch's ``{task_id}``, moved by one lifecycle function."""

    parser_classes = JSON_OR_FORM
    action = ""  # for the refusal message
    done_message = ""
    allowed: tuple[str, ...] = ()  # statuses a batch member must be in to be moved
    move: Callable[..., Any]  # the lifecycle function, as a staticmethod

    def act(self, request: Request) -> Response:
        target = validated(RecordTargetInput, request.data)
        if "task_id" in target:
            return _act_on_batch(request, target["task_id"], self.move, self.allowed)
        record = _record_or_none(request, target["id"])
        if record is None:
            return fail(404, f"id: publish record {target['id']} not found", field="id")
        try:
            moved = self.move(record.task_id, actor=request.user)
        except InvalidTransition as exc:
            return transition_refused(exc, record_id=record.pk, action=self.action)
        return ok(_record_as_left(request, record, moved), self.done_message)


class RetryView(_RecordActionView):
    action, done_message, allowed = "retry", "重试任务已提交", lifecycle.RETRYABLE
    move = staticmethod(lifecycle.retry_task)

    @extend_schema(request=RecordTargetInput, responses={**ENVELOPE, 409: EnvelopeSerializer})
    def post(self, request: Request) -> Response:
        """``POST /retryPublishTask`` {id} or {task_id}: failed or cancelled -> 待发布."""
        return self.act(request)


class CancelView(_RecordActionView):
    action, done_message, allowed = "cancel", "任务已取消", lifecycle.CANCELLABLE
    move = staticmethod(lifecycle.cancel_task)

    @extend_schema(request=RecordTargetInput, responses={**ENVELOPE, 409: EnvelopeSerializer})
    def post(self, request: Request) -> Response:
        """``POST /cancelPublishTask`` {id} or {task_id}: waiting or publishing -> 已取消."""
        return self.act(request)


def _move_for(word: str, current: str) -> tuple[str, Any, dict[str, Any]]:
    """The one lifecycle function that makes a record show ``word``, from ``current``.

    The lifecycle still guards the move: if the task changed since it was read, it refuses.
    """
    if word == CANCELLED_WORD:
        return "cancel", lifecycle.cancel_task, {}
    if current in lifecycle.STARTABLE:
        return "start", lifecycle.start_task, {}
    return "retry", lifecycle.retry_task, {}


class StatusUpdateView(SocialAutoUploadView):
    parser_classes = JSON_OR_FORM

    @extend_schema(request=StatusUpdateInput, responses={**ENVELOPE, 409: EnvelopeSerializer})
    def post(self, request: Request) -> Response:
        """``POST /updatePublishTaskStatus`` {id, status, error_msg}.

        Only what a person may decide: 已取消 cancels (``error_msg`` is the reason recorded),
        待发布 starts a pending or stopped record or retries a failed or cancelled one. The
        other words are the worker's to set and are refused.
        """
        data = validated(StatusUpdateInput, request.data)
        word = data["status"]
        if word not in (PENDING_WORD, CANCELLED_WORD):
            return fail(
                400,
                f"status: {word} is set by the worker; a client may set {PENDING_WORD} "
                f"(start or retry) or {CANCELLED_WORD} (cancel)",
                field="status",
            )
        record = _record_or_none(request, data["id"])
        if record is None:
            return fail(404, f"id: publish record {data['id']} not found", field="id")
        action, move, kwargs = _move_for(word, record.task.status)
        if action == "cancel":
            kwargs["reason"] = data["error_msg"] or ""
        try:
            moved = move(record.task_id, actor=request.user, **kwargs)
        except InvalidTransition as exc:
            return transition_refused(exc, record_id=record.pk, action=action)
        return ok(_record_as_left(request, record, moved), "状态已更新")


def _record_as_left(request: Request, record: PublishTaskRecord, task: Task) -> dict[str, Any]:
    """The record as the action left it, like the canonical API's action responses: a worker
    may already have claimed a retried record, and the answer should not depend on that race.
    Read again for what the action recorded beside the task (a cancel's reason)."""
    record = _record_or_none(request, record.pk) or record
    record.task = task
    return record_data(record)
