"""``publish.video``: publish one uploaded video to one platform account (social-auto-upload).

One attempt, in steps that survive retries and lost workers:

1. hold the account (``ctx.hold_account``): one publish per account at a time, and a cooldown
   after each; while another task holds it, the handler is called again later without keeping
   a worker;
2. upload the file, once: the platform's video id is kept as the task's ``external_id``, so a
   retry (or a second worker after a lost lease) goes on with that video instead of uploading
   it again;
3. poll the platform until it has processed the video (``ctx.poll_again``: no worker waits);
4. publish it (idempotent on the platform), and record the result.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from rest_framework import serializers

from taskcenter.errors import PermanentError
from taskcenter.kinds import RetryPolicy, task_kind
from taskcenter.models import Task

from .models import LoginStatus, PlatformAccount, PublishTaskRecord
from .providers import PUBLISHED, LoginExpired, get_provider

KIND = "publish.video"
MAX_TITLE = 200
MAX_TAGS = 30
MAX_PRODUCT_LINK = 1000
MAX_PRODUCT_TITLE = 200
UPLOADED = "uploaded"
# The parameters passed to the platform as they are, beside the title, tags and time.
OPTIONS = ("category", "is_draft", "product_link", "product_title")


class PublishVideoParams(serializers.Serializer):
    file_id = serializers.IntegerField(min_value=1)
    account_id = serializers.IntegerField(min_value=1)
    title = serializers.CharField(max_length=MAX_TITLE)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=50), max_length=MAX_TAGS, default=list
    )
    schedule_time = serializers.DateTimeField(required=False, allow_null=True, default=None)
    # social-auto-upload's publish settings: category (its front end sends 1 for "original"),
    # save as a draft (WeChat Channels), and a product to link (Douyin).
    category = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=0, max_value=2**31 - 1
    )
    is_draft = serializers.BooleanField(required=False, default=False)
    product_link = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=MAX_PRODUCT_LINK
    )
    product_title = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=MAX_PRODUCT_TITLE
    )

    def validate(self, attrs: dict) -> dict:
        # Stored as JSON: keep the time as ISO 8601 text.
        if attrs.get("schedule_time") is not None:
            attrs["schedule_time"] = attrs["schedule_time"].isoformat()
        return attrs


def _backoff() -> RetryPolicy:
    base = float(settings.PUBLISHING["RETRY_BASE_SECONDS"])
    return RetryPolicy(base_delay=base, factor=3.0, max_delay=max(base, 600.0))


def _mark_login(account: PlatformAccount, status: int) -> None:
    # Not a task status: the account's own flag, shown to whoever manages the accounts.
    PlatformAccount.objects.filter(pk=account.pk).update(
        login_status=status, login_checked_at=timezone.now()
    )


@task_kind(KIND, params=PublishVideoParams, max_attempts=3, backoff=_backoff())
def publish_video(task: Task, ctx) -> dict:
    """Upload a video to a platform account, wait until it is processed, and publish it."""
    config = settings.PUBLISHING
    record = PublishTaskRecord.objects.select_related("account", "file").filter(task=task).first()
    if record is None:
        raise PermanentError(f"Task {task.pk} has no publish record")
    account = record.account
    if account is None:
        raise PermanentError(f"The account {record.account_name!r} was deleted")
    ctx.hold_account(
        str(account.pk),
        platform=record.platform_name,
        cooldown=float(config["ACCOUNT_COOLDOWN_SECONDS"]),
        wait=float(config["POLL_SECONDS"]),
    )
    params = task.parameters
    platform, account_ref = record.platform_name, str(account.pk)
    remote_id, remote_status = ctx.remote_job()
    provider = get_provider()
    try:
        if not remote_id:
            if record.file is None:
                raise PermanentError(f"The video {record.filename!r} was deleted")
            ctx.progress(10, "uploading", force=True)
            # Keyed by record: a retry after a lost answer gets the stored video back.
            upload = provider.upload(
                platform,
                account_ref,
                record.file.path,
                record.filename,
                key=f"taskcenter-publish-record-{record.pk}",
            )
            remote_id, remote_status = upload.remote_id, UPLOADED
            ctx.remember_remote_job(remote_id, remote_status)
            ctx.progress(50, "uploaded; the platform is processing it", force=True)
        if remote_status != PUBLISHED:
            state = provider.processing_status(platform, account_ref, remote_id)
            if state not in ("ready", PUBLISHED):
                ctx.poll_again(float(config["POLL_SECONDS"]), "the platform is processing it")
            ctx.progress(80, "publishing", force=True)
            publication = provider.publish(
                platform,
                account_ref,
                remote_id,
                title=params["title"],
                tags=params.get("tags") or [],
                schedule_time=params.get("schedule_time"),
                options={name: params[name] for name in OPTIONS if name in params},
            )
            ctx.remember_remote_job(remote_id, PUBLISHED)
            url = publication.url
        else:
            url = (task.result or {}).get("url", "")
    except LoginExpired:
        _mark_login(account, LoginStatus.EXPIRED)
        raise
    _mark_login(account, LoginStatus.VALID)
    return {
        "remote_id": remote_id,
        "url": url,
        "platform": platform,
        "account": record.account_name,
    }
