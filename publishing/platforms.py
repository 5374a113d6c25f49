"""The platforms a video can be published to, with social-auto-upload's numeric type codes.

Codes 1-4 are social-auto-upload's own (``user_info.type``: 1 xiaohongshu, 2 tencent channels,
3 douyin, 4 kuaishou); 5 is its taobao and is left unused here so a code never means two
platforms; bilibili, tiktok and youtube, which it has no code for, follow from 6.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class PlatformType(models.IntegerChoices):
    XIAOHONGSHU = 1, _("Xiaohongshu")
    """小红书"""

    TENCENT = 2, _("Tencent Channels")
    """视频号 (WeChat Channels)"""

    DOUYIN = 3, _("Douyin")
    """抖音"""

    KUAISHOU = 4, _("Kuaishou")
    """快手"""

    BILIBILI = 6, _("Bilibili")
    """哔哩哔哩"""

    TIKTOK = 7, _("TikTok")
    """TikTok"""

    YOUTUBE = 8, _("YouTube")
    """YouTube"""


# The short name used as Task.platform, as the records' platform_name and in platform URLs.
PLATFORM_NAMES: dict[int, str] = {
    PlatformType.XIAOHONGSHU: "xiaohongshu",
    PlatformType.TENCENT: "tencent",
    PlatformType.DOUYIN: "douyin",
    PlatformType.KUAISHOU: "kuaishou",
    PlatformType.BILIBILI: "bilibili",
    PlatformType.TIKTOK: "tiktok",
    PlatformType.YOUTUBE: "youtube",
}
# What a social-auto-upload front end shows; accepted as a platform_name filter too.
PLATFORM_LABELS: dict[int, str] = {
    PlatformType.XIAOHONGSHU: "小红书",
    PlatformType.TENCENT: "视频号",
    PlatformType.DOUYIN: "抖音",
    PlatformType.KUAISHOU: "快手",
    PlatformType.BILIBILI: "哔哩哔哩",
    PlatformType.TIKTOK: "TikTok",
    PlatformType.YOUTUBE: "YouTube",
}


def platform_name(platform_type: int) -> str:
    return PLATFORM_NAMES[PlatformType(platform_type)]


def platform_names_matching(value: str) -> list[str]:
    """The platform names a ``platform_name`` filter means: a name, a label, or a type code."""
    wanted = value.strip().lower()
    return [
        name
        for code, name in PLATFORM_NAMES.items()
        if wanted in (name, PLATFORM_LABELS[code].lower(), str(code))
    ]
