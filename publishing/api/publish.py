"""social-auto-upload's publish endpoints: ``/postVideo`` (one platform), ``/postVideoBatch``
(several ``/postVideo`` bodies at once) and ``/postVideosToMultiplePlatforms``.

A body is checked and planned first (``plan_publish``: its files and accounts found among the
caller's, its publish times computed), then queued (``queue_publish``: one batch through
``batches.create_publish_batch``); the request returns at once and the worker publishes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from publishing.api.envelope import SocialAutoUploadView, ok
from publishing.api.serializers import PostVideoInput, PublishInput, publish_options, record_data
from publishing.api.views import ENVELOPE, records_for, validated
from publishing.batches import BATCH_MAX, create_publish_batch
from publishing.models import PlatformAccount, VideoFile
from publishing.schedule import ScheduleError, publish_times
from taskcenter.api.authentication import authenticated_user
from taskcenter.api.parsers import SafeJSONParser


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


@dataclass(frozen=True)
class PlannedPublish:
    """A validated publish body: its files and accounts found, its times computed."""

    data: dict[str, Any]
    files: list[VideoFile]
    accounts: list[PlatformAccount]
    schedule: dict[str, Any]  # create_publish_batch's schedule_time or schedule_times

    @property
    def size(self) -> int:
        return len(self.files) * len(self.accounts)


def _schedule(data: dict[str, Any], count: int) -> dict[str, Any]:
    """One ``scheduleTime`` for all files; or, with ``enableTimer``, social-auto-upload's daily
    schedule, one time per file; or nothing (publish at once)."""
    if data["scheduleTime"]:
        return {"schedule_time": data["scheduleTime"]}
    if not data["enableTimer"]:
        return {}
    try:
        times = publish_times(
            count,
            videos_per_day=data["videosPerDay"],
            daily_times=data["dailyTimes"],
            start_days=data["startDays"],
        )
    except ScheduleError as exc:
        raise ValidationError({exc.field: [str(exc)]}) from None
    return {"schedule_times": times}


def plan_publish(user, data: dict[str, Any]) -> PlannedPublish:
    """Find a publish body's files and accounts among ``user``'s; 400 naming the first bad one."""
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
        ("file_path", "account_name"),
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
        message = f"{len(files)} files x {len(accounts)} accounts is more than {BATCH_MAX} records."
        raise ValidationError({"accountList": [message]})
    return PlannedPublish(data, files, accounts, _schedule(data, len(files)))


def queue_publish(user, planned: PlannedPublish) -> dict[str, Any]:
    """Create the planned batch; answer it as ``/postVideo`` does."""
    data = planned.data
    batch_id, records = create_publish_batch(
        owner=user,
        files=planned.files,
        accounts=planned.accounts,
        title=data["title"],
        tags=data["tags"],
        options=publish_options(data),
        **planned.schedule,
    )
    fresh = records_for(user).filter(pk__in=[r.pk for r in records]).order_by("pk")
    return {"task_id": batch_id, "count": len(records), "records": [record_data(r) for r in fresh]}


class PublishView(SocialAutoUploadView):
    parser_classes = [SafeJSONParser]
    input_class: type = PublishInput

    def post(self, request: Request) -> Response:
        user = authenticated_user(request)
        planned = plan_publish(user, validated(self.input_class, request.data))
        return ok(queue_publish(user, planned), "发布任务已提交")


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


class PostVideoBatchView(SocialAutoUploadView):
    parser_classes = [SafeJSONParser]

    @extend_schema(request=PostVideoInput(many=True), responses=ENVELOPE)
    def post(self, request: Request) -> Response:
        """``POST /postVideoBatch``: a JSON array of ``/postVideo`` bodies, each its own batch.

        All are checked before any is queued, and queued together or not at all; an error names
        the body by its position (``"1.fileList.0: ..."``). At most ``BATCH_MAX`` records in all.
        """
        bodies = request.data
        if not isinstance(bodies, list):
            raise ValidationError({"body": ["Expected a JSON array of /postVideo bodies."]})
        user = authenticated_user(request)
        planned: list[PlannedPublish] = []
        for index, body in enumerate(bodies[: BATCH_MAX + 1]):
            try:
                planned.append(plan_publish(user, validated(PostVideoInput, body)))
            except ValidationError as exc:
                raise ValidationError({str(index): exc.detail}) from None
        records = sum(plan.size for plan in planned)
        if len(bodies) > BATCH_MAX or records > BATCH_MAX:
            raise ValidationError({"body": [f"More than {BATCH_MAX} records in all."]})
        with transaction.atomic():
            batches = [queue_publish(user, plan) for plan in planned]
        return ok(batches, None)
