"""The shared rate limit store: its sliding-window arithmetic, threads, and failing open."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from taskcenter.api import throttling
from taskcenter.api.throttling import RateStore, SharedUserRateThrottle

MINUTE = 60.0
START = 6_000_000.0  # the start of a minute window (a multiple of 60)


@pytest.fixture
def rate_store(tmp_path) -> RateStore:
    return RateStore(tmp_path / "throttle.sqlite3")


def test_a_window_allows_its_limit_then_says_how_long_to_wait(rate_store):
    waits = [rate_store.hit("u", 3, MINUTE, now=START + 10) for _ in range(4)]

    assert waits[:3] == [0.0, 0.0, 0.0]
    # At the next minute's start the three weigh just under 3: one more fits right after.
    assert waits[3] == pytest.approx(50, abs=0.01)


def test_the_previous_window_counts_by_how_much_of_it_is_still_in_view(rate_store):
    for _ in range(4):
        assert rate_store.hit("u", 4, MINUTE, now=START + 59) == 0.0

    # 10 s into the next window, 50 s of the last one is in view: 4 * 50/60 = 3.33 of 4.
    assert rate_store.hit("u", 4, MINUTE, now=START + 70) == 0.0
    denied = rate_store.hit("u", 4, MINUTE, now=START + 70)
    # 4 * (1 - t/60) + 1 < 4 once t > 15 s: 5 s from now.
    assert denied == pytest.approx(5, abs=0.01)
    assert rate_store.hit("u", 4, MINUTE, now=START + 75.1) == 0.0
    assert rate_store.hit("u", 4, MINUTE, now=START + 75.2) > 0


def test_clients_and_windows_long_past_do_not_count(rate_store):
    for _ in range(3):
        rate_store.hit("a", 3, MINUTE, now=START)

    assert rate_store.hit("b", 3, MINUTE, now=START) == 0.0
    assert rate_store.hit("a", 3, MINUTE, now=START + 2 * MINUTE) == 0.0


def test_threads_hitting_one_key_never_get_more_than_the_limit(rate_store):
    allowed: list[bool] = []
    lock = threading.Lock()

    def client() -> None:
        for _ in range(40):
            ok = rate_store.hit("busy", 100, 3600.0, now=START) == 0.0
            with lock:
                allowed.append(ok)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(allowed) == 320
    assert sum(allowed) == 100


def test_a_broken_store_lets_requests_through_rather_than_failing_them(monkeypatch, tmp_path):
    (tmp_path / "not-a-database").mkdir()
    monkeypatch.setattr(throttling, "store", RateStore(tmp_path / "not-a-database"))

    class TwoAMinute(SharedUserRateThrottle):
        rate = "2/min"

    user = SimpleNamespace(pk=7, is_authenticated=True)
    assert all(TwoAMinute().allow_request(SimpleNamespace(user=user), None) for _ in range(5))
