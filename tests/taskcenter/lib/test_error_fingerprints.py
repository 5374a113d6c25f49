"""Error fingerprints: messages that differ only in their variable parts are one group."""

import pytest

from taskcenter.lib.error_fingerprints import fingerprint, normalise


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Task 17 failed after 3 attempts", "Task 90210 failed after 12 attempts"),
        (
            "GET https://api.example.com/v2/posts/123?page=4 returned 502",
            "GET https://api.example.com/v2/posts/987?page=1 returned 503",
        ),
        (
            "record 3f2504e0-4f89-11d3-9a0c-0305e82c3301 not found",
            "record 9b2f0c7e-1111-4abc-8def-000000000001 not found",
        ),
        ("object 0x7f3a2c1b9d00 is locked", "object 0x7f3a2c1b9e48 is locked"),
        ("request a94a8fe5ccb19ba61c4c0873 rejected", "request 0beec7b5ea3f0fdbc95d0dd4 rejected"),
        ("account 'shop-main' is banned", "account 'other shop' is banned"),
        ('file "clip-1.mp4" too large', 'file "holiday.mov" too large'),
        ("cannot reach 10.0.0.12:8080", "cannot reach 192.168.1.5:443"),
        ("mail to a.b@example.com bounced", "mail to ops@corp.example.org bounced"),
        ("timeout after 30.5 s", "timeout  after 2 s\n"),
    ],
)
def test_messages_differing_only_in_variable_parts_share_a_fingerprint(first, second):
    assert normalise(first) == normalise(second)
    assert fingerprint(first) == fingerprint(second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("HTTP 502 from upload", "HTTP 502 from login"),
        ("account banned", "account suspended"),
        ("can't connect to 'a'", "can't resolve 'a'"),
    ],
)
def test_different_failures_keep_different_fingerprints(first, second):
    assert fingerprint(first) != fingerprint(second)


def test_normalised_form_reads_as_the_message_with_placeholders():
    message = (
        "Upload of 'clip-17.mp4' to https://cdn.example.com/u/93 failed: HTTP 502 "
        "(request 3f2504e0-4f89-11d3-9a0c-0305e82c3301, took 1500ms)"
    )
    assert normalise(message) == (
        "Upload of <value> to <url> failed: HTTP <n> (request <uuid>, took <n>ms)"
    )


def test_words_with_digits_in_their_names_and_plain_hex_like_words_stay():
    assert normalise("http2 stream reset; s3 bucket deadbeef accepted") == (
        "http2 stream reset; s3 bucket deadbeef accepted"
    )


def test_long_messages_group_by_their_beginning():
    head = "Platform said: " + "x" * 600
    assert fingerprint(head + " tail one") == fingerprint(head + " tail two")
    assert len(fingerprint("anything")) == 16
