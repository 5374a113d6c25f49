"""The HTTP publish provider against the sandbox platform: streaming, ids, error mapping."""

from __future__ import annotations

import hashlib
import tracemalloc

import pytest

from publishing.providers import HttpProvider, LoginExpired, MultipartFile
from taskcenter.errors import PermanentError, RetryableError
from tests.support.publishing import mp4_bytes

BIG = 24 * 1024 * 1024


@pytest.fixture
def provider(platform, settings) -> HttpProvider:
    settings.PUBLISHING = {**settings.PUBLISHING, "BASE_URL": platform.url, "TIMEOUT": 30.0}
    return HttpProvider()


def _big_file(tmp_path):
    path = tmp_path / "big.mp4"
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for n in range(BIG // (1024 * 1024)):
            block = (mp4_bytes(64) if n == 0 else b"") + bytes([n % 251]) * (1024 * 1024)
            block = block[: 1024 * 1024]
            digest.update(block)
            out.write(block)
    return path, digest.hexdigest()


def test_upload_streams_the_file_from_disk_without_holding_it_in_memory(provider, area, tmp_path):
    path, sha256 = _big_file(tmp_path)

    tracemalloc.start()
    try:
        uploaded = provider.upload("douyin", "7", path, "big.mp4")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes for a {BIG}-byte upload"
    [received] = area.uploads()
    assert received["size"] == BIG
    assert received["sha256"] == sha256
    assert received["video_id"] == uploaded.remote_id
    assert received["account_id"] == "7"


def test_multipart_body_reads_in_small_pieces_and_has_the_announced_length(tmp_path):
    path = tmp_path / "v.mp4"
    path.write_bytes(mp4_bytes(1_000_000))
    body = MultipartFile(path, 'we"ird\r\nname.mp4')

    pieces = []
    while piece := body.read(8192):
        assert len(piece) <= 8192
        pieces.append(piece)

    data = b"".join(pieces)
    assert len(data) == len(body)
    assert b'filename="weirdname.mp4"' in data
    assert path.read_bytes() in data


def test_publish_flow_and_errors_map_to_retryable_or_permanent(provider, area, tmp_path):
    path = tmp_path / "v.mp4"
    path.write_bytes(mp4_bytes(5000))
    remote_id = provider.upload("tiktok", "1", path, "v.mp4").remote_id

    assert provider.processing_status("tiktok", "1", remote_id) == "processing"
    with pytest.raises(RetryableError, match="still processing"):
        provider.publish("tiktok", "1", remote_id, title="t", tags=[], schedule_time=None)
    assert provider.processing_status("tiktok", "1", remote_id) == "ready"
    first = provider.publish("tiktok", "1", remote_id, title="t", tags=["a"], schedule_time=None)
    again = provider.publish("tiktok", "1", remote_id, title="t", tags=["a"], schedule_time=None)
    assert first.url == again.url != ""

    with pytest.raises(PermanentError, match="Video not found"):
        provider.processing_status("tiktok", "2", remote_id)  # another account's video
    area.apply({"expire_login": "1"})
    with pytest.raises(LoginExpired, match="Login expired"):
        provider.processing_status("tiktok", "1", remote_id)
    area.apply({"upload_fail_next": 1, "restore_login": "1"})
    with pytest.raises(RetryableError, match="storage unavailable"):
        provider.upload("tiktok", "1", path, "v.mp4")
    with pytest.raises(PermanentError, match="no longer on disk"):
        provider.upload("tiktok", "1", tmp_path / "gone.mp4", "gone.mp4")


def test_an_upload_key_seen_before_answers_with_the_first_video(provider, area, tmp_path):
    path = tmp_path / "v.mp4"
    path.write_bytes(mp4_bytes(5000))

    first = provider.upload("douyin", "1", path, "v.mp4", key="record-1")
    again = provider.upload("douyin", "1", path, "v.mp4", key="record-1")
    other_account = provider.upload("douyin", "2", path, "v.mp4", key="record-1")
    unkeyed = provider.upload("douyin", "1", path, "v.mp4")

    assert again == first
    assert len({first.remote_id, other_account.remote_id, unkeyed.remote_id}) == 3
    assert len(area.uploads()) == 3


def test_login_check_asks_the_platform_with_the_accounts_credentials(provider, area):
    area.apply({"expire_login": "8"})

    assert provider.check_login("douyin", "7", {"cookies": [1]}, timeout=5) is True
    assert provider.check_login("douyin", "8", {"cookies": [1]}, timeout=5) is False
    assert provider.check_login("douyin", "9", {}, timeout=5) is False
    with area.lock:
        checks = [
            (e["account_id"], e["logged_in"]) for e in area.log if e["event"] == "login_check"
        ]
    assert checks == [("7", True), ("8", False), ("9", False)]


def test_login_check_on_an_unknown_platform_is_no_verdict(provider, area):
    with pytest.raises(PermanentError):
        provider.check_login("myspace", "7", {"cookies": [1]}, timeout=5)
