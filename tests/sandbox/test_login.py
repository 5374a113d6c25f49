"""The sandbox platform's QR-code login over real HTTP: a real PNG QR code, the person's answer
by control call or by itself after a delay, expiry, cancellation and injected failures."""

from __future__ import annotations

import base64
import time

import pytest
import requests

from sandbox.login import DEFAULT_EXPIRE_MS, area_of
from sandbox.publishing import area_of as publishing_area_of
from tests.support.png import is_qr_code_of

AUTH = {"Authorization": "Bearer sandbox-token"}
ANSWERS = {
    "confirm_after_ms": "confirmed",
    "refuse_after_ms": "refused",
    "expire_after_ms": "expired",
}


def call(platform, method: str, path: str, headers=AUTH, **kwargs) -> requests.Response:
    return requests.request(method, f"{platform.url}{path}", headers=headers, timeout=5, **kwargs)


def start(platform, name: str = "alice_dy", site: str = "douyin", **body) -> dict:
    response = call(
        platform, "POST", f"/publish/{site}/logins", json={"account_name": name, **body}
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


def status(platform, login_id: str, site: str = "douyin") -> dict:
    response = call(platform, "GET", f"/publish/{site}/logins/{login_id}")
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_a_login_shows_a_png_qr_code_of_its_content_and_waits(platform):
    login = start(platform)

    png = base64.b64decode(login["qr_png"])
    assert is_qr_code_of(png, login["qr_content"])
    assert login["qr_content"] == f"https://douyin.example/qr-login/{login['login_id']}"
    assert login["expires_in"] == 120
    assert status(platform, login["login_id"]) == {
        "login_id": login["login_id"],
        "status": "waiting",
    }


def test_confirming_by_account_name_answers_the_newest_login_with_cookies(platform):
    older = start(platform)
    newer = start(platform)

    response = call(platform, "POST", "/publish/_logins/confirm", json={"account_name": "alice_dy"})
    assert response.status_code == 200, response.text
    assert response.json()["login_id"] == newer["login_id"]

    state = status(platform, newer["login_id"])
    assert state["status"] == "confirmed"
    assert state["nickname"] == "alice_dy"
    [cookie] = state["credentials"]["cookies"]
    assert cookie["name"] == "sessionid"
    assert len(cookie["value"]) == 32
    assert cookie["domain"] == ".douyin.example"
    assert status(platform, older["login_id"])["status"] == "waiting"
    again = call(platform, "POST", "/publish/_logins/confirm", json=newer)
    assert again.status_code == 409
    assert again.json() == {"error": "The login is confirmed"}


def test_refusing_by_login_id_gives_no_credentials(platform):
    login = start(platform)

    response = call(
        platform, "POST", "/publish/_logins/refuse", json={"login_id": login["login_id"]}
    )

    assert response.status_code == 200
    assert status(platform, login["login_id"]) == {
        "login_id": login["login_id"],
        "status": "refused",
    }


def answered_after(platform, login_id: str, started: float) -> tuple[str, float]:
    """Polls a login until it is no longer waiting: its answer and how long after `started`."""
    deadline = started + 5
    while (answer := status(platform, login_id)["status"]) == "waiting":
        assert time.monotonic() < deadline, "the login never answered by itself"
        time.sleep(0.02)
    return answer, time.monotonic() - started


def test_switches_answer_by_themselves_after_a_delay_and_codes_expire(platform):
    # Each answer is timed from just before its login started, so a slow machine only makes the
    # measured delay longer, never shorter: the lower bound is what proves the delay is honoured.
    area = area_of(platform)
    quiet = {"confirm_after_ms": 0, "refuse_after_ms": 0, "expire_after_ms": DEFAULT_EXPIRE_MS}
    answers = {}
    for switch, name in (
        ("confirm_after_ms", "auto-yes"),
        ("refuse_after_ms", "auto-no"),
        ("expire_after_ms", "nobody"),
    ):
        area.apply({**quiet, switch: 300})
        started = time.monotonic()
        login = start(platform, name)
        assert status(platform, login["login_id"])["status"] in {"waiting", ANSWERS[switch]}
        answers[switch] = answered_after(platform, login["login_id"], started)

    assert {switch: answer for switch, (answer, _) in answers.items()} == ANSWERS
    assert all(waited >= 0.3 for _, waited in answers.values()), answers
    log = {
        entry["account_name"]: entry["status"]
        for entry in call(platform, "GET", "/publish/_logins").json()
    }
    assert log == {"auto-yes": "confirmed", "auto-no": "refused", "nobody": "expired"}


def test_a_cancelled_login_can_no_longer_be_confirmed(platform):
    login = start(platform, site="kuaishou")

    cancelled = call(platform, "POST", f"/publish/kuaishou/logins/{login['login_id']}/cancel")
    late = call(platform, "POST", "/publish/_logins/confirm", json={"login_id": login["login_id"]})

    assert cancelled.json()["data"]["status"] == "cancelled"
    assert late.status_code == 409
    assert status(platform, login["login_id"], "kuaishou")["status"] == "cancelled"
    # A login belongs to its platform: another platform's path does not find it.
    assert call(platform, "GET", f"/publish/douyin/logins/{login['login_id']}").status_code == 404


def test_confirming_an_accounts_login_restores_it_for_publishing(platform):
    publishing = publishing_area_of(platform)
    publishing.apply({"expire_login": "42"})
    login = start(platform, account_id=42)

    call(platform, "POST", "/publish/_logins/confirm", json={"login_id": login["login_id"]})
    status(platform, login["login_id"])

    assert publishing.switches()["expired_logins"] == []


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/publish/myspace/logins", {"account_name": "a"}, 404),
        ("/publish/douyin/logins", {}, 400),
        ("/publish/douyin/logins", {"account_name": "  "}, 400),
        ("/publish/douyin/logins", {"account_name": ["a"]}, 400),
        ("/publish/douyin/logins", {"account_name": "x" * 101}, 400),
        ("/publish/douyin/logins", {"account_name": "a\x00b"}, 400),
        ("/publish/_logins/confirm", {}, 400),
        ("/publish/_logins/confirm", {"account_name": "nobody-waiting"}, 404),
        ("/publish/_logins/control", {"confirm_after_ms": "soon"}, 400),
    ],
)
def test_bad_requests_are_refused_with_their_reason(platform, path, body, expected):
    response = call(platform, "POST", path, json=body)

    assert response.status_code == expected
    assert response.json()["error"]


def test_injected_start_failures_and_the_token(platform):
    call(platform, "POST", "/publish/_logins/control", json={"start_fail_next": 1})

    failed = call(platform, "POST", "/publish/douyin/logins", json={"account_name": "a"})
    anonymous = call(
        platform, "POST", "/publish/douyin/logins", headers={}, json={"account_name": "a"}
    )

    assert failed.status_code == 503
    assert anonymous.status_code == 401
    assert start(platform)["login_id"]
