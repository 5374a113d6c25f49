"""The publishing admin's own pages (QR login, batches) in the operator's language."""

from __future__ import annotations

import pytest

PAGE = "/admin/publishing/platformaccount/qr-login/"


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("zh-Hans", ["扫码登录平台账号", "显示二维码", "账号名称", "抖音", "小红书"]),
        (
            "ja",
            ["QR コードでプラットフォームアカウントにログイン", "QR コードを表示", "アカウント名"],
        ),
    ],
)
def test_qr_login_page_is_translated(admin_client, language, expected):
    response = admin_client.get(PAGE, HTTP_ACCEPT_LANGUAGE=language)

    assert response.status_code == 200
    page = response.content.decode()
    for text in expected:
        assert text in page, text
    assert "Show the QR code" not in page


def test_unknown_owner_error_is_translated(admin_client):
    response = admin_client.post(
        PAGE,
        {"owner": "nobody", "platform_type": 3, "account_name": "x"},
        HTTP_ACCEPT_LANGUAGE="ja",
    )

    assert response.status_code == 200
    assert "nobody という名前のユーザーはいません。" in response.content.decode()
    assert "data-stream" not in response.content.decode()
