"""Kinds for ``bench/scale.py``: the same two task shapes under many names and platforms.

A busy deployment runs many kinds for many platforms; the statistics tallies, the account holds
and the indexes see a spread of keys. These kinds let the benchmark make that spread (and its
opposite, everything on one key) without changing what a task does. Loaded by the benchmark's
workers through ``TASKCENTER_KIND_MODULES=bench.scale_kinds``.
"""

import time

from taskcenter.kinds import task_kind

PLATFORMS = ("douyin", "kuaishou", "xiaohongshu", "bilibili", "tiktok", "youtube", "x", "weibo")
KINDS = 8


def noop_kind(number: int) -> str:
    return f"scale.noop.{number}"


def sleep_kind(number: int) -> str:
    return f"scale.sleep.{number}"


def _noop(task, ctx):
    return None


def _sleep(task, ctx):
    time.sleep(0.1)
    return None


for _number in range(KINDS):
    platform = PLATFORMS[_number % len(PLATFORMS)]
    task_kind(noop_kind(_number), max_attempts=1, platform=platform)(_noop)
    task_kind(sleep_kind(_number), max_attempts=1, platform=platform)(_sleep)
