"""social-auto-upload's endpoints at its own paths, in its ``{code, msg, data}`` envelope.

Thin, as the canonical API: validate, call one ``taskcenter.lifecycle`` function per record (or
``batches.create_publish_batch``), serialize. A user sees and acts on their own files, accounts
and records; staff see every record. Another user's record is "not found".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import OuterRef, ProtectedError, Q, QuerySet, Subquery
from django.db.models.fields.json import KT
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from publishing import media
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
    PostVideoInput,
    PublishInput,
    RecordQuery,
    RecordTargetInput,
    StatusUpdateInput,
    account_data,
    file_data,
    record_data,
)
from publishing.batches import BATCH_MAX, create_publish_batch
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


def _valid(serializer_class: type, data: Any) -> dict:
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


class UploadFileView(SocialAutoUploadView):
    """``POST /upload`` and ``/uploadSave``: store a video (multipart field ``file``)."""

    parser_classes = [MultiPartParser]

    @property
    def max_body(self) -> int:  # type: ignore[override]
        return upload_body_limit()

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "filename": {"type": "string", "description": "Optional new name."},
                },
                "required": ["file"],
            }
        },
        responses={**ENVELOPE, 413: EnvelopeSerializer, 415: EnvelopeSerializer},
    )
    def post(self, request: Request) -> Response:
        """Upload a video; checks size, type and content; answers the stored file."""
        upload = request.FILES.get("file")
        filename = str(request.data.get("filename") or "").strip()[:200]
        video = media.store_upload(authenticated_user(request), upload, filename=filename)
        return ok(file_data(video), "File uploaded and saved successfully")


class FileListView(SocialAutoUploadView):
    @extend_schema(responses=ENVELOPE)
    def get(self, request: Request) -> Response:
        """``GET /getFiles``: the user's uploaded videos, newest first."""
        owner = authenticated_user(request)
        files = VideoFile.objects.filter(owner=owner).order_by("-created_at", "-id")[:1000]
        return ok([file_data(video) for video in files])


class FileDeleteView(SocialAutoUploadView):
    parser_classes = JSON_OR_FORM

    @extend_schema(request=IdInput, responses={**ENVELOPE, 409: EnvelopeSerializer})
    def post(self, request: Request) -> Response:
        """``POST /deleteFile`` {id}: delete a video that no queued or running record uses."""
        file_id = _valid(IdInput, request.data)["id"]
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
        """``GET /getAccounts``: the user's platform accounts (credentials are never shown)."""
        accounts = PlatformAccount.objects.filter(owner=authenticated_user(request))
        return ok([account_data(account) for account in accounts])


class AccountCreateView(SocialAutoUploadView):
    parser_classes = JSON_OR_FORM

    @extend_schema(request=AccountInput, responses={**ENVELOPE, 409: EnvelopeSerializer})
    def post(self, request: Request) -> Response:
        """``POST /addAccount`` {type, userName, name, credentials}."""
        data = _valid(AccountInput, request.data)
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


class AccountDeleteView(SocialAutoUploadView):
    parser_classes = JSON_OR_FORM

    @extend_schema(request=IdInput, responses={**ENVELOPE, 409: EnvelopeSerializer})
    def post(self, request: Request) -> Response:
        """``POST /deleteAccount`` {id}: refused while publish records refer to it."""
        account_id = _valid(IdInput, request.data)["id"]
        owner = authenticated_user(request)
        account = PlatformAccount.objects.filter(owner=owner, pk=account_id).first()
        if account is None:
            return fail(404, f"id: account {account_id} not found", field="id")
        try:
            account.delete()
        except ProtectedError:
            return fail(409, "id: the account has publish records", field="id")
        return ok(None, "account deleted successfully")


# --- publishing -----------------------------------------------------------------------------


def _item_error(field: str, index: int, message: str) -> ValidationError:
    """A 400 on one item of a list field, keyed by the item's position."""
    # DRF takes any key in an error dict; the stubs only str.
    return ValidationError({field: {index: [message]}})  # type: ignore[dict-item]


def _resolve(queryset: QuerySet, refs: list, field: str, name_fields: tuple[str, ...]) -> list:
    """The objects ``refs`` name (ids or names), in order; 400 naming the first bad one."""
    found = []
    for index, ref in enumerate(refs):
        if isinstance(ref, int):
            matches = list(queryset.filter(pk=ref)[:2])
        else:
            condition = Q()
            for name_field in name_fields:
                condition |= Q(**{name_field: ref})
            matches = list(queryset.filter(condition)[:2])
        if not matches:
            raise _item_error(field, index, f"{ref!r} not found.")
        if len(matches) > 1:
            raise _item_error(field, index, f"{ref!r} is ambiguous; use the id.")
        if matches[0] in found:
            raise _item_error(field, index, f"{ref!r} is listed twice.")
        found.append(matches[0])
    return found


class PublishView(SocialAutoUploadView):
    parser_classes = [SafeJSONParser]
    input_class: type = PublishInput

    def post(self, request: Request) -> Response:
        data = _valid(self.input_class, request.data)
        user = authenticated_user(request)
        files = _resolve(
            VideoFile.objects.filter(owner=user),
            data["fileList"],
            "fileList",
            ("stored_name", "filename"),
        )
        accounts = _resolve(
            PlatformAccount.objects.filter(owner=user),
            data["accountList"],
            "accountList",
            ("account_name",),
        )
        platform_type = data.get("type")
        if platform_type is not None:
            for index, account in enumerate(accounts):
                if account.platform_type != platform_type:
                    message = (
                        f"Account {account.pk} is on {account.platform_name}, not type "
                        f"{platform_type}; /postVideosToMultiplePlatforms mixes platforms."
                    )
                    raise _item_error("accountList", index, message)
        if len(files) * len(accounts) > BATCH_MAX:
            message = (
                f"{len(files)} files x {len(accounts)} accounts is more than {BATCH_MAX} records."
            )
            raise ValidationError({"accountList": [message]})
        batch_id, records = create_publish_batch(
            owner=user,
            files=files,
            accounts=accounts,
            title=data["title"],
            tags=data["tags"],
            schedule_time=data["scheduleTime"]
            if data["enableTimer"] or data["scheduleTime"]
            else None,
        )
        fresh = records_for(user).filter(pk__in=[r.pk for r in records]).order_by("pk")
        return ok(
            {
                "task_id": batch_id,
                "count": len(records),
                "records": [record_data(r) for r in fresh],
            },
            "发布任务已提交",
        )


class PostVideoView(PublishView):
    input_class = PostVideoInput

    @extend_schema(request=PostVideoInput, responses=ENVELOPE)
    def post(self, request: Request) -> Response:
        """``POST /postVideo``: publish files to accounts of one platform ``type``."""
        return super().post(request)


class PostMultiPlatformView(PublishView):
    input_class = PublishInput

    @extend_schema(request=PublishInput, responses=ENVELOPE)
    def post(self, request: Request) -> Response:
        """``POST /postVideosToMultiplePlatforms``: publish files to accounts on any platforms."""
        return super().post(request)


# --- records --------------------------------------------------------------------------------


class RecordListView(SocialAutoUploadView):
    @extend_schema(parameters=[RecordQuery], responses=ENVELOPE)
    def get(self, request: Request) -> Response:
        """``GET /getPublishTaskRecords``: newest first, filtered, paged."""
        query = _valid(RecordQuery, request.query_params)
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
        target = _valid(RecordTargetInput, request.data)
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
        data = _valid(StatusUpdateInput, request.data)
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
