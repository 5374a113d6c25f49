"""social-auto-upload's daily schedule: one publish time per file from the timer fields."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest

from publishing.schedule import ScheduleError, publish_times

SHANGHAI = ZoneInfo("Asia/Shanghai")
# 23:50 on 31 January in Shanghai: tomorrow is another month.
NOW = datetime(2030, 1, 31, 23, 50, 7, tzinfo=SHANGHAI)


@pytest.fixture(autouse=True)
def _shanghai(settings):
    settings.TIME_ZONE = "Asia/Shanghai"


def _local(times: list[datetime]) -> list[str]:
    return [t.astimezone(SHANGHAI).strftime("%m-%d %H:%M") for t in times]


def test_one_a_day_starts_tomorrow_at_the_first_time():
    times = publish_times(3, daily_times=[time(10)], now=NOW)

    assert _local(times) == ["02-01 10:00", "02-02 10:00", "02-03 10:00"]
    assert all(t.tzinfo is not None for t in times)


def test_several_a_day_take_the_times_in_order_then_the_next_day():
    times = publish_times(
        5, videos_per_day=2, daily_times=[time(9, 30), time(21, 15), time(23)], now=NOW
    )

    assert _local(times) == [
        "02-01 09:30",
        "02-01 21:15",
        "02-02 09:30",
        "02-02 21:15",
        "02-03 09:30",
    ]


def test_start_days_puts_the_first_day_later():
    assert _local(publish_times(1, daily_times=[time(8)], start_days=2, now=NOW)) == ["02-03 08:00"]


def test_the_originals_default_hours():
    times = publish_times(6, videos_per_day=5, now=NOW)

    assert _local(times) == [
        "02-01 06:00",
        "02-01 11:00",
        "02-01 14:00",
        "02-01 16:00",
        "02-01 22:00",
        "02-02 06:00",
    ]


def test_days_count_in_the_configured_time_zone_not_utc():
    # 23:50 in Shanghai is 15:50 UTC on the same day; tomorrow is still 1 February.
    utc_now = NOW.astimezone(ZoneInfo("UTC"))

    assert _local(publish_times(1, daily_times=[time(10)], now=utc_now)) == ["02-01 10:00"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"videos_per_day": 0}, "videosPerDay"),
        ({"videos_per_day": 3, "daily_times": [time(1), time(2)]}, "videosPerDay"),
        ({"start_days": -1}, "startDays"),
    ],
)
def test_impossible_schedules_name_the_field(kwargs, field):
    with pytest.raises(ScheduleError) as refused:
        publish_times(2, now=NOW, **kwargs)

    assert refused.value.field == field
