"""The operators' console in English, Simplified Chinese and Japanese; the dialect APIs' bytes
do not depend on the caller's Accept-Language."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from taskcenter import lifecycle
from taskcenter.models import Task

REPO = Path(settings.BASE_DIR)
LANGUAGES = ["zh_Hans", "ja"]
CATALOGUES = sorted(
    path
    for language in LANGUAGES
    for path in REPO.glob(f"*/locale/{language}/LC_MESSAGES/django.po")
) + [REPO / "locale" / language / "LC_MESSAGES" / "django.po" for language in LANGUAGES]


def failed_task(make_task) -> Task:
    task = make_task("demo.flaky", {"permanent": True}, start=True)
    _, execution = lifecycle.claim_attempt(task.pk, worker_id="w")
    return lifecycle.fail_attempt(execution, error="Account suspended", permanent=True)


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("zh-Hans", ["任务中心", "开始所选任务", "重试所选任务", "仪表盘", "执行中", "优先级"]),
        (
            "ja",
            ["タスクセンター", "選択したタスクを開始", "選択したタスクを再試行", "ダッシュボード"],
        ),
        ("en", ["Task Center", "Start selected tasks", "Retry selected tasks", "Dashboard"]),
    ],
)
def test_task_list_is_in_the_browsers_language(admin_client, make_task, language, expected):
    make_task("demo.noop")

    response = admin_client.get(
        reverse("admin:taskcenter_task_changelist"), HTTP_ACCEPT_LANGUAGE=language
    )

    assert response.status_code == 200
    page = response.content.decode()
    for text in expected:
        assert text in page, text
    assert response["Content-Language"] == language.lower()


@pytest.mark.parametrize(
    ("language", "expected", "absent"),
    [
        ("zh-Hans", ["重试", "参数与结果", "错误信息", "失败</span>"], "Parameters and result"),
        (
            "ja",
            ["再試行", "パラメーターと結果", "エラーメッセージ", "失敗</span>"],
            "Parameters and result",
        ),
    ],
)
def test_task_page_labels_and_buttons_are_translated(
    admin_client, make_task, language, expected, absent
):
    task = failed_task(make_task)

    response = admin_client.get(
        reverse("admin:taskcenter_task_change", args=[task.pk]), HTTP_ACCEPT_LANGUAGE=language
    )

    assert response.status_code == 200
    page = response.content.decode()
    for text in expected:
        assert text in page, text
    assert absent not in page
    assert [action for action, _ in response.context["action_buttons"]] == ["retry"]


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("zh-Hans", ["任务中心仪表盘", "最近 24 小时", "失败率", "最近的失败", "待处理"]),
        ("ja", ["タスクセンター ダッシュボード", "直近 24 時間", "失敗率", "最近の失敗", "保留中"]),
    ],
)
def test_dashboard_is_translated(admin_client, make_task, language, expected):
    failed_task(make_task)

    response = admin_client.get(
        reverse("admin:taskcenter_task_dashboard"), HTTP_ACCEPT_LANGUAGE=language
    )

    assert response.status_code == 200
    page = response.content.decode()
    for text in expected:
        assert text in page, text
    assert "Recent failures" not in page


def test_bulk_action_messages_are_in_the_operators_language(admin_client, make_task):
    failed = failed_task(make_task)
    pending = make_task("demo.noop")

    response = admin_client.post(
        reverse("admin:taskcenter_task_changelist"),
        {"action": "retried_selected", "_selected_action": [failed.pk, pending.pk]},
        HTTP_ACCEPT_LANGUAGE="ja",
        follow=True,
    )

    texts = [str(m) for m in response.context["messages"]]
    assert "再試行\uff1a1 タスク。" in texts  # a full-width colon
    assert any("1 タスクは再試行できない状態のため拒否しました" in t for t in texts), texts
    failed.refresh_from_db()
    assert failed.status == "QUEUED"


def test_language_switch_sets_the_admins_language(admin_client):
    changelist = reverse("admin:taskcenter_task_changelist")
    switch = admin_client.get(changelist)
    assert 'action="/i18n/setlang/"' in switch.content.decode()

    response = admin_client.post(
        "/i18n/setlang/", {"language": "ja", "next": changelist}, HTTP_ACCEPT_LANGUAGE="en"
    )

    assert response.status_code == 302
    assert response["Location"] == changelist
    page = admin_client.get(changelist, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "選択したタスクを開始" in page
    assert '<option value="ja" selected>' in page

    admin_client.post("/i18n/setlang/", {"language": "zh-hans", "next": changelist})
    assert "开始所选任务" in admin_client.get(changelist).content.decode()


def _entries(text: str) -> list[tuple[str, list[str], bool]]:
    """(msgid, msgstrs, fuzzy) of each entry of a .po file, the header left out."""

    def joined(block: str, keyword: str) -> list[str]:
        pattern = rf'^{keyword} "(.*)"\n((?:".*"\n)*)'
        return [
            first + "".join(re.findall(r'^"(.*)"$', rest, re.M))
            for first, rest in re.findall(pattern, block + "\n", re.M)
        ]

    entries = []
    for block in text.split("\n\n"):
        if block.startswith("#~") or "\nmsgid" not in "\n" + block:
            continue
        msgid = joined(block, "msgid")[0]
        if not msgid:
            continue
        msgstrs = joined(block, r"msgstr(?:\[\d+\])?")
        fuzzy = any(line.startswith("#,") and "fuzzy" in line for line in block.splitlines())
        entries.append((msgid, msgstrs, fuzzy))
    return entries


@pytest.mark.parametrize("catalogue", CATALOGUES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_message_is_translated(catalogue: Path):
    text = catalogue.read_text(encoding="utf-8")
    entries = _entries(text)

    assert entries
    assert "#, fuzzy" not in text.split("\n\n")[0]  # a fuzzy header is dropped by msgfmt
    untranslated = [msgid for msgid, msgstrs, fuzzy in entries if fuzzy or not all(msgstrs)]
    assert untranslated == []
    # The committed .mo says what the .po says (CI does not compile them).
    with catalogue.with_suffix(".mo").open("rb") as compiled:
        messages = gettext.GNUTranslations(compiled)._catalog  # type: ignore[attr-defined]
    for msgid, msgstrs, _fuzzy in entries:
        key, text = _unescape(msgid), _unescape(msgstrs[0])
        assert messages.get(key, messages.get((key, 0))) == text, msgid


def _unescape(text: str) -> str:
    return text.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


def test_the_po_reader_finds_empty_and_fuzzy_entries():
    text = (
        'msgid ""\nmsgstr ""\n"Language: ja\\n"\n\n'
        'msgid "Start"\nmsgstr "開始"\n\n'
        'msgid "Stop"\nmsgstr ""\n\n'
        '#, fuzzy, python-format\nmsgid "Task #%(id)s"\nmsgstr "タスク"\n\n'
        'msgid "%(counter)s record."\nmsgid_plural "%(counter)s records."\nmsgstr[0] ""\n'
    )

    entries = _entries(text)

    assert entries == [
        ("Start", ["開始"], False),
        ("Stop", [""], False),
        ("Task #%(id)s", ["タスク"], True),
        ("%(counter)s record.", [""], False),
    ]


@pytest.mark.parametrize(
    ("url", "authenticated"),
    [
        ("/api/v1/tasks", False),  # Task Center's own API
        ("/api/v1/tasks/987654", True),
        ("/api/sync/tasks", False),  # the data sync service
        ("/api/integration/tasks", False),  # the integration tasks table
        ("/api/task/self", False),  # new-api's task center
        ("/getFiles", False),  # social-auto-upload's publishing API
        ("/api/v1/tasks/search/results", False),  # the XGet scraper API
    ],
)
def test_dialect_errors_are_the_same_bytes_in_every_language(api, anon_api, url, authenticated):
    client = api if authenticated else anon_api
    answers = [
        client.get(url, HTTP_ACCEPT_LANGUAGE=language, HTTP_ACCEPT="application/json")
        for language in ["en", "zh-Hans", "ja", "zh-CN,zh;q=0.9", "ja-JP"]
    ]

    first = answers[0]
    assert first.status_code >= 400
    for answer in answers[1:]:
        assert answer.status_code == first.status_code
        assert answer.content == first.content
        assert "Content-Language" not in answer
        assert answer.get("Vary") == first.get("Vary")


def test_browsable_api_page_follows_the_browsers_language(admin_client):
    response = admin_client.get("/api/v1/tasks", HTTP_ACCEPT="text/html", HTTP_ACCEPT_LANGUAGE="ja")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert response["Content-Language"] == "ja"
