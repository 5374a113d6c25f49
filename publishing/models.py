"""social-auto-upload's records: video files, the social accounts they go to, one publish record per
file x account.

A record's status is its Task's status seen through ``taskcenter.api.status_words`` (PUBLISHING
dialect); it is never stored here, so the two cannot drift. Only ``taskcenter.lifecycle``
changes it.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from taskcenter.api.status_words import PUBLISHING, word_for
from taskcenter.models import Task
from taskcenter.models.fields import EncryptedJSONField
from taskcenter.models.visibility import TaskChildQuerySet

from .platforms import PLATFORM_LABELS, PlatformType, platform_name


class VideoFile(models.Model):
    """An uploaded video, stored at ``PUBLISHING["MEDIA_ROOT"] / stored_name``."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="video_files",
        verbose_name=_("owner"),
    )
    filename = models.CharField(_("file name"), max_length=255)
    # "<uuid>_<safe name>", as social-auto-upload's file_path column: unique, never user-chosen.
    stored_name = models.CharField(_("stored as"), max_length=300, unique=True)
    size = models.BigIntegerField(_("size (bytes)"))
    content_type = models.CharField(_("content type"), max_length=100)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    created_at = models.DateTimeField(_("uploaded at"), default=timezone.now)

    class Meta:
        verbose_name = _("video file")
        verbose_name_plural = _("video files")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "-created_at"], name="videofile_owner_idx")]

    def __str__(self) -> str:
        return self.filename

    @property
    def path(self) -> Path:
        return Path(settings.PUBLISHING["MEDIA_ROOT"]) / self.stored_name


class LoginStatus(models.IntegerChoices):
    """social-auto-upload's ``user_info.status``: whether the saved login still works."""

    EXPIRED = 0, _("Login expired")
    VALID = 1, _("Logged in")


def new_account_file_path() -> str:
    """A fresh ``file_path`` for an account: a name like social-auto-upload's cookie files."""
    return f"{uuid.uuid4()}.json"


class PlatformAccount(models.Model):
    """A social account on one platform. ``credentials`` leave the server only to their owner,
    as the credentials file download social-auto-upload's front end offers."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="platform_accounts",
        verbose_name=_("owner"),
    )
    platform_type = models.PositiveSmallIntegerField(_("platform type"), choices=PlatformType)
    name = models.CharField(_("name"), max_length=100, blank=True)
    account_name = models.CharField(_("account name"), max_length=100)
    # social-auto-upload's ``filePath``: the name its front end knows the account's credentials
    # by (it sends it back in a publish's accountList and in /downloadCookie). Opaque and never
    # a path on disk: the credentials themselves are the encrypted column below.
    file_path = models.CharField(
        _("credentials file name"), max_length=64, unique=True, default=new_account_file_path
    )
    # Encrypted at rest (TASKCENTER_CREDENTIALS_KEYS); decrypted only when loaded.
    credentials = EncryptedJSONField(_("credentials"), default=dict, blank=True)
    login_status = models.PositiveSmallIntegerField(
        _("login status"), choices=LoginStatus, default=LoginStatus.VALID
    )
    login_checked_at = models.DateTimeField(_("login checked at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("platform account")
        verbose_name_plural = _("platform accounts")
        ordering = ["platform_type", "account_name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "platform_type", "account_name"], name="account_owner_name_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.account_name} ({self.platform_name})"

    @property
    def platform_name(self) -> str:
        return platform_name(self.platform_type)

    @property
    def platform_label(self) -> str:
        return PLATFORM_LABELS[PlatformType(self.platform_type)]


class PublishTaskRecord(models.Model):
    """social-auto-upload's ``publish_task_records`` row: one file published to one account."""

    task = models.OneToOneField(
        Task, on_delete=models.CASCADE, related_name="publish_record", verbose_name=_("task")
    )
    # social-auto-upload calls the batch id ``task_id``; here that name is the Task foreign key's
    # column, so the batch is ``batch_id`` (as on Task) and its endpoints show it as task_id.
    batch_id = models.CharField(_("batch"), max_length=64)
    filename = models.CharField(_("file name"), max_length=255)
    file = models.ForeignKey(
        VideoFile,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="publish_records",
        verbose_name=_("file"),
    )
    # A finished record outlives its account (social-auto-upload deletes accounts outright); it
    # keeps the account's name and platform below. /deleteAccount refuses while one is active.
    account = models.ForeignKey(
        PlatformAccount,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="publish_records",
        verbose_name=_("account"),
    )
    account_name = models.CharField(_("account name"), max_length=100)
    platform_name = models.CharField(_("platform"), max_length=30)
    platform_type = models.PositiveSmallIntegerField(_("platform type"), choices=PlatformType)
    create_time = models.DateTimeField(_("created at"), default=timezone.now)

    objects = TaskChildQuerySet.as_manager()

    class Meta:
        verbose_name = _("publish task record")
        verbose_name_plural = _("publish task records")
        ordering = ["-create_time", "-id"]
        indexes = [
            models.Index(fields=["batch_id"], name="publish_batch_idx"),
            models.Index(fields=["platform_name", "-create_time"], name="publish_platform_idx"),
            models.Index(fields=["account_name"], name="publish_account_name_idx"),
            models.Index(fields=["filename"], name="publish_filename_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.filename} -> {self.account_name} ({self.platform_name})"

    # Everything below is read from the Task, which the lifecycle keeps.

    @property
    def status(self) -> str:
        """social-auto-upload's status word (待发布 / 发布中 / 发布成功 / 发布失败 / 已取消)."""
        return str(word_for(self.task.status, PUBLISHING))

    @property
    def error_msg(self) -> str:
        return self.task.error_message

    @property
    def update_time(self):
        return self.task.updated_at

    @property
    def remote_id(self) -> str:
        """The video's id on the platform once uploaded; a retry publishes it, not a new one."""
        return self.task.external_id
