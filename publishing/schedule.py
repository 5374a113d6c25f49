"""When each file of a timed publish goes out: social-auto-upload's daily schedule.

Its publish center sends ``enableTimer: 1`` with ``videosPerDay``, ``dailyTimes`` (``["10:00",
...]``) and ``startDays``; its backend turns them into one publish time per file
(``generate_schedule_time_next_day`` in its ``utils/files_times.py``): file *i* of the list goes
out on day ``i // videosPerDay + startDays + 1`` counted from today (``startDays`` 0 is
tomorrow), at ``dailyTimes[i % videosPerDay]``, and every account of the publish gets that file
at that time.

Two differences, both where the original cannot run as its front end calls it: its arithmetic
takes whole hours while the front end sends ``"HH:MM"`` text (here the minutes are kept), and its
callers pass ``startDays`` into the function's ``timestamps`` argument (here ``startDays`` means
what the function and the front end say it means). Times are in ``settings.TIME_ZONE``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta

from django.utils import timezone

# The original's times of day when a publish names none.
DEFAULT_DAILY_TIMES = (time(6), time(11), time(14), time(16), time(22))


class ScheduleError(ValueError):
    """The timer fields do not make a schedule; ``field`` names the one to change."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def publish_times(
    count: int,
    *,
    videos_per_day: int = 1,
    daily_times: Sequence[time] = DEFAULT_DAILY_TIMES,
    start_days: int = 0,
    now: datetime | None = None,
) -> list[datetime]:
    """The publish time of each of ``count`` files, in list order (aware datetimes)."""
    if videos_per_day < 1:
        raise ScheduleError("videosPerDay", "Must be at least 1.")
    if videos_per_day > len(daily_times):
        raise ScheduleError(
            "videosPerDay",
            f"{videos_per_day} videos a day need as many dailyTimes; {len(daily_times)} given.",
        )
    if start_days < 0:
        raise ScheduleError("startDays", "Must be 0 (tomorrow) or more.")
    local_now = timezone.localtime(now)
    today = local_now.date()
    zone = local_now.tzinfo
    times = []
    for index in range(count):
        day = today + timedelta(days=index // videos_per_day + start_days + 1)
        at = daily_times[index % videos_per_day]
        times.append(datetime.combine(day, at.replace(tzinfo=None), tzinfo=zone))
    return times
