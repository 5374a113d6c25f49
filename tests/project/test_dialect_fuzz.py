"""Property-based fuzzing of every dialect endpoint and the canonical API's writes.

For each endpoint hypothesis generates query strings, JSON bodies (deep nesting, huge integers,
unicode, lone surrogates, nulls, wrong types, non-objects, broken bytes), form and multipart
bodies, and odd path ids, sent by an authenticated user. Every answer must be below 500; every
refusal (4xx) must be JSON in the endpoint's own envelope and leave the database (and the media
directory) exactly as it was.

Deterministic for CI: ``derandomize=True`` and no example database, so each run replays the same
examples; ``max_examples`` keeps the module well under a minute.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from publishing.models import PlatformAccount, PublishTaskRecord, VideoFile
from publishing.platforms import PlatformType
from quota import ledger as quota
from quota.models import QuotaLedgerEntry
from taskcenter.models import Task, TaskEvent, TaskExecution
from tests.support.clients import new_api_client
from tests.support.dialects import (
    CANONICAL,
    GENERATION,
    INTEGRATION,
    PUBLISHING,
    SYNC,
    assert_error_envelope,
)
from tests.support.publishing import add_account, mp4_bytes, upload

# 50 examples for each of 52 endpoints take about half a minute: the full run has them, the
# fast set (-m "not slow") does not.
pytestmark = [pytest.mark.fuzz, pytest.mark.slow]

EXAMPLES = 50
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@dataclass(frozen=True)
class Endpoint:
    dialect: str
    method: str
    path: str  # "{name}" is an id from the world fixture, or a generated one
    query: tuple[str, ...] = ()
    body: tuple[str, ...] | None = None  # known body fields; None: the endpoint takes no body
    form: bool = False  # also takes form-encoded and multipart bodies
    upload: bool = False
    staff: bool = False
    # A body the endpoint accepts ("{name}" strings are ids from the world fixture): most
    # examples change one or two of its fields, to reach the checks behind the first one.
    template: dict[str, Any] | None = None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


PAGE = ("page", "page_size", "size")
TASK_FIELDS = ("task_name", "describe", "parameters", "priority", "max_attempts", "account_id")
ROW = {
    "integration_id": 7,
    "client_id": 1,
    "template_id": 1,
    "account_id": 1,
    "argument": "{}",
    "task_type": "noop",
}
PUBLISH = {"fileList": ["{file}"], "accountList": ["{account}"], "title": "t", "tags": ["a"]}
# What social-auto-upload's publish center adds to every /postVideo body.
TIMER = {
    "enableTimer": 1,
    "videosPerDay": 1,
    "dailyTimes": ["10:00"],
    "startDays": 0,
    "category": 0,
    "productLink": "",
    "productTitle": "",
    "isDraft": False,
}
ACCOUNT = {"type": 3, "userName": "fuzzed", "name": "n", "credentials": {"cookie": "c"}}


def post(dialect: str, path: str, template: dict | None = None, **kw: Any) -> Endpoint:
    """A POST taking a JSON body: ``template`` if given, and the fields it names."""
    template = template or {}
    kw.setdefault("body", ())
    body = tuple(dict.fromkeys((*template, *kw.pop("body"))))
    return Endpoint(dialect, "POST", path, body=body, template=template or None, **kw)


ENDPOINTS = [
    # social-auto-upload publishing API
    Endpoint(PUBLISHING, "POST", "/upload", upload=True, body=("filename",)),
    Endpoint(PUBLISHING, "POST", "/uploadSave", upload=True, body=("filename",)),
    Endpoint(PUBLISHING, "GET", "/getFiles", query=("id",)),
    Endpoint(PUBLISHING, "GET", "/getFile", query=("filename",)),
    Endpoint(PUBLISHING, "GET", "/download/{stored}"),
    Endpoint(PUBLISHING, "GET", "/deleteFile", query=("id",)),
    post(PUBLISHING, "/deleteFile", {"id": "{file}"}, form=True),
    Endpoint(PUBLISHING, "GET", "/getAccounts", query=("type",)),
    Endpoint(PUBLISHING, "GET", "/getValidAccounts", query=("type",)),
    post(PUBLISHING, "/addAccount", ACCOUNT, form=True),
    post(PUBLISHING, "/updateUserinfo", {"id": "{account}", **ACCOUNT}, form=True),
    Endpoint(PUBLISHING, "GET", "/deleteAccount", query=("id",)),
    post(PUBLISHING, "/deleteAccount", {"id": "{account}"}, form=True),
    Endpoint(PUBLISHING, "POST", "/uploadCookie", upload=True, body=("id", "platform")),
    Endpoint(PUBLISHING, "GET", "/downloadCookie", query=("filePath",)),
    post(
        PUBLISHING,
        "/postVideo",
        {**PUBLISH, "type": 3, **TIMER},
        body=("scheduleTime", "thumbnail"),
    ),
    Endpoint(PUBLISHING, "POST", "/postVideoBatch", body=()),
    post(PUBLISHING, "/postVideosToMultiplePlatforms", PUBLISH, body=("scheduleTime",)),
    Endpoint(
        PUBLISHING,
        "GET",
        "/getPublishTaskRecords",
        query=(*PAGE, "status", "platform_name", "account_name", "filename", "task_id"),
    ),
    post(
        PUBLISHING,
        "/updatePublishTaskStatus",
        {"id": "{record}", "status": "已取消", "error_msg": "x"},
        form=True,
    ),
    post(PUBLISHING, "/retryPublishTask", {"id": "{record}"}, body=("task_id",), form=True),
    post(PUBLISHING, "/cancelPublishTask", {"task_id": "{batch}"}, body=("id",), form=True),
    # new-api task center
    Endpoint(
        GENERATION,
        "GET",
        "/api/task/self",
        query=(
            "p",
            "page_size",
            "platform",
            "task_id",
            "status",
            "action",
            "media_type",
            "start_timestamp",
        ),
    ),
    Endpoint(
        GENERATION,
        "GET",
        "/api/task/",
        query=(
            "p",
            "page_size",
            "channel_id",
            "user_id",
            "status",
            "media_type",
            "start_timestamp",
        ),
        staff=True,
    ),
    Endpoint(
        GENERATION,
        "GET",
        "/api/task/self/stats",
        query=("start_timestamp", "end_timestamp", "media_type", "status"),
    ),
    Endpoint(
        GENERATION,
        "GET",
        "/api/task/stats",
        query=("start_timestamp", "end_timestamp", "media_type", "channel_id"),
        staff=True,
    ),
    post(
        GENERATION,
        "/api/task/submit",
        {"platform": "suno", "action": "song", "prompt": "a song", "channel_id": 1},
        body=("mv", "tags", "title", "make_instrumental"),
    ),
    # data sync service
    Endpoint(
        SYNC, "GET", "/api/sync/tasks", query=(*PAGE, "status", "task_type", "data_source_id")
    ),
    post(
        SYNC,
        "/api/sync/tasks",
        {"data_source_id": "ds-2", "task_type": "full_sync", "parameters": {"batch_size": 10}},
        body=("interface_id",),
    ),
    Endpoint(SYNC, "GET", "/api/sync/tasks/statistics", query=("window", "data_source_id")),
    Endpoint(SYNC, "GET", "/api/sync/tasks/{sync}"),
    Endpoint(
        SYNC, "PUT", "/api/sync/tasks/{sync}", body=("config",), template={"config": {"timeout": 5}}
    ),
    post(SYNC, "/api/sync/tasks/{sync}/cancel"),
    post(SYNC, "/api/sync/tasks/{sync}/retry"),
    # integration tasks table
    Endpoint(
        INTEGRATION,
        "GET",
        "/api/integration/tasks",
        query=(*PAGE, "integration_id", "client_id", "template_id", "account_id", "status"),
    ),
    post(INTEGRATION, "/api/integration/tasks", ROW, body=("user_id", "status", "task_type")),
    Endpoint(INTEGRATION, "GET", "/api/integration/tasks/{integration}"),
    # XGet scraper API results, on the canonical API
    Endpoint(CANONICAL, "GET", "/api/v1/tasks/{task}/results", query=("page", "size", "data_type")),
    Endpoint(
        CANONICAL,
        "GET",
        "/api/v1/tasks/search/results",
        query=("query", "task_id", "data_type", "page", "size"),
    ),
    Endpoint(CANONICAL, "GET", "/api/v1/tasks/export/{task}", query=("format", "data_type")),
    # the canonical API's writes
    post(
        CANONICAL,
        "/api/v1/tasks",
        {"task_type": "demo.noop", "task_name": "n", "parameters": {"a": 1}},
        body=(*TASK_FIELDS, "platform", "action", "proxy_id"),
        query=("start",),
        form=True,
    ),
    post(
        CANONICAL,
        "/api/v1/tasks/batch",
        {"tasks": [{"task_type": "demo.noop", "parameters": {}}]},
        body=("start",),
    ),
    Endpoint(
        CANONICAL,
        "PATCH",
        "/api/v1/tasks/{task}",
        body=TASK_FIELDS,
        template={"task_name": "renamed", "priority": 1},
        form=True,
    ),
    Endpoint(
        CANONICAL,
        "PUT",
        "/api/v1/tasks/{task}",
        body=TASK_FIELDS,
        template={"task_name": "renamed", "parameters": {}},
    ),
    Endpoint(CANONICAL, "DELETE", "/api/v1/tasks/{task}"),
    post(CANONICAL, "/api/v1/tasks/{task}/start"),
    post(CANONICAL, "/api/v1/tasks/{task}/stop"),
    post(CANONICAL, "/api/v1/tasks/{task}/cancel", {"reason": "r"}),
    post(CANONICAL, "/api/v1/tasks/{task}/retry"),
    post(CANONICAL, "/api/v1/tasks/{task}/clone", {"task_name": "copy"}, body=TASK_FIELDS),
    post(CANONICAL, "/api/v1/publish-records/{record}/cancel"),
    post(CANONICAL, "/api/v1/publish-records/{record}/retry"),
]


# --- values --------------------------------------------------------------------------------------

NASTY_INTS = [0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**30, -(10**30)]
NASTY_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "..",
    ".",
    "../../etc/passwd",
    "%00",
    "中" * 300 + ".mp4",
    "x" * 5000,
    "1e999",
    "NaN",
    "-1",
    "0",
    "true",
    "null",
    "[]",
    "{}",
    "[" * 3000,
    "task_1",
    "task_99999999999999999999",
    "9" * 40,
    "已取消",
    "待发布",
    "2024-13-45T99:00:00",
    "demo.noop",
    "full_sync",
    "song",
]


@dataclass(frozen=True)
class Deep:
    """A value nested ``depth`` levels, spliced into the JSON text (too deep for json.dumps)."""

    depth: int
    opener: str

    def text(self) -> str:
        if self.opener == "[":
            return "[" * self.depth + "]" * self.depth
        return '{"a":' * self.depth + "1" + "}" * self.depth


# What databases and recursive code choke on: tried more often than the rest.
WORST = [
    "\x00",
    "\ud800",
    10**30,
    2**63,
    -(2**63) - 1,
    float("nan"),
    float("inf"),
    "中" * 300,
    "x" * 5000,
    None,
    Deep(70, "["),
    Deep(40, "{"),
]


def scalars(ids: list[Any]) -> st.SearchStrategy:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.sampled_from(NASTY_INTS),
        st.floats(),
        st.text(max_size=20),
        st.sampled_from(NASTY_TEXT),
        st.sampled_from(ids),
    )


def json_values(ids: list[Any]) -> st.SearchStrategy:
    deep = st.builds(Deep, st.sampled_from([33, 40, 70, 600, 5000]), st.sampled_from(["[", "{"]))
    nested = st.recursive(
        scalars(ids),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(
                st.text(max_size=8) | st.sampled_from(NASTY_TEXT), children, max_size=3
            )
        ),
        max_leaves=8,
    )
    return st.one_of(nested, deep)


def dumps(value: Any) -> str:
    """JSON text of ``value`` with each ``Deep`` spliced in as raw text."""
    deep: dict[str, str] = {}

    def mark(obj: Any) -> str:
        key = f"@@deep{len(deep)}@@"
        deep[json.dumps(key)] = obj.text()
        return key

    text = json.dumps(value, default=mark)  # lone surrogates become \ud800 escapes: valid JSON
    for key, raw in deep.items():
        text = text.replace(key, raw)
    return text


RAW_BODIES = [
    b"",
    b"{",
    b"}",
    b"\xff\xfe\x00",
    b"\x00",
    b"[]",
    b"null",
    b'"text"',
    b"1e999",
    b'{"a":1}{"b":2}',
    b'{"a": NaN}',
    b'{"a": Infinity}',
    b'{"a":"\\ud800"}',
    b'{"a": 1' + b"0" * 5000 + b"}",
    b"[" * 100_000,
    b'{"a":' * 3000,
]


def query_strings(keys: tuple[str, ...], ids: list[Any]) -> st.SearchStrategy:
    value = st.one_of(
        st.text(max_size=20),
        st.sampled_from(NASTY_TEXT),
        st.sampled_from([str(n) for n in NASTY_INTS]),
        st.sampled_from([str(i) for i in ids]),
    )
    key = st.sampled_from(keys) if keys else st.text(max_size=8)
    pairs = st.lists(st.tuples(key | st.text(max_size=8), value), max_size=6)
    # Lone surrogates become bytes that are not UTF-8: a client can send those too.
    return pairs.map(lambda items: urlencode(items, errors="surrogatepass"))


def path_ids(name: str, world: dict[str, Any]) -> st.SearchStrategy:
    real = world[name]
    others = ["0", "1", "999999999999999999", "task_0", "task_999999999999999999999"]
    others += ["..", ".", "%2e%2e", quote("中文"), "-1", "1e3", quote("\x00"), "task_", "x" * 300]
    return st.one_of(st.just(str(real)), st.just(f"task_{real}"), st.sampled_from(others))


# --- the world: one of each thing an endpoint can name -------------------------------------------


@pytest.fixture
def world(user, staff_user, media_root, make_task, settings) -> dict[str, Any]:
    # /getValidAccounts asks the platform: nothing listens on the discard port.
    settings.PUBLISHING = {**settings.PUBLISHING, "BASE_URL": "http://127.0.0.1:9"}
    quota.grant(user.pk, 1_000_000)
    client = new_api_client(user)
    video_file = upload(client, "clip.mp4")
    account = add_account(client, PlatformType.DOUYIN, "alice-douyin")
    published = client.post(
        "/postVideo",
        {"fileList": [video_file["id"]], "accountList": [account["id"]], "type": 3, "title": "t"},
        format="json",
    ).json()["data"]
    sync = client.post(
        "/api/sync/tasks", {"data_source_id": "ds-1", "task_type": "full_sync"}, format="json"
    ).json()["data"]
    row = {"integration_id": 7, "client_id": 1, "template_id": 1, "account_id": 1}
    integration = client.post(
        "/api/integration/tasks",
        {**row, "argument": "{}", "task_type": "noop"},
        format="json",
    ).json()["data"]
    task = make_task("demo.noop")
    return {
        "client": client,
        "staff": new_api_client(staff_user),
        "media_root": media_root,
        "task": task.pk,
        "sync": sync["id"],
        "integration": integration["id"],
        "record": published["records"][0]["id"],
        "file": video_file["id"],
        "stored": video_file["file_path"],
        "account": account["id"],
        "batch": published["task_id"],
        "ids": [
            task.pk,
            video_file["id"],
            video_file["file_path"],
            account["id"],
            account["filePath"],
            published["task_id"],
            published["records"][0]["id"],
            sync["id"],
            integration["id"],
        ],
    }


def snapshot(media_root: Path) -> tuple:
    """What a refused request must not change."""
    counts = tuple(
        model.objects.count()
        for model in (
            Task,
            TaskEvent,
            TaskExecution,
            PublishTaskRecord,
            VideoFile,
            PlatformAccount,
            QuotaLedgerEntry,
        )
    )
    tasks = tuple(Task.objects.order_by("pk").values_list("pk", "status", "updated_at"))
    accounts = [sorted(a.items()) for a in PlatformAccount.objects.order_by("pk").values()]
    files = tuple(sorted(p.name for p in media_root.rglob("*"))) if media_root.exists() else ()
    return counts, tasks, str(accounts), files


# --- requests ------------------------------------------------------------------------------------


def requests_for(endpoint: Endpoint, world: dict[str, Any]) -> st.SearchStrategy:
    ids = world["ids"]
    names = [part[1:-1] for part in endpoint.path.split("/") if part.startswith("{")]
    paths = st.fixed_dictionaries({name: path_ids(name, world) for name in names}).map(
        lambda chosen: endpoint.path.format(**chosen)
    )
    queries = query_strings(endpoint.query, ids) if endpoint.query else st.just("")
    bodies = bodies_for(endpoint, world)
    return st.tuples(paths, queries, bodies)


def resolve(template: Any, world: dict[str, Any]) -> Any:
    """The template with each ``"{name}"`` string replaced by the world's id of that name."""
    if isinstance(template, dict):
        return {key: resolve(value, world) for key, value in template.items()}
    if isinstance(template, list):
        return [resolve(value, world) for value in template]
    if isinstance(template, str) and template[1:-1] in world and template[0] + template[-1] == "{}":
        return world[template[1:-1]]
    return template


def mutations(
    template: dict[str, Any], fields: tuple[str, ...], values: st.SearchStrategy
) -> st.SearchStrategy:
    """``template`` with up to two fields replaced, often by what databases choke on (alone or
    one level down in an object or a list), or dropped."""
    worst = st.sampled_from(WORST)
    inside = st.one_of(
        worst,
        st.dictionaries(st.sampled_from(["k", "\x00", "\ud800"]), worst, min_size=1, max_size=1),
        st.lists(worst, min_size=1, max_size=1),
        values,
    )
    changes = st.dictionaries(st.sampled_from(fields), inside, max_size=2)
    dropped = st.sets(st.sampled_from(sorted(template)), max_size=1) if template else st.just(set())

    def apply(change: dict[str, Any], drop: set[str]) -> dict[str, Any]:
        body = {key: value for key, value in template.items() if key not in drop}
        return {**body, **change}

    return st.builds(apply, changes, dropped)


def bodies_for(endpoint: Endpoint, world: dict[str, Any]) -> st.SearchStrategy:
    """``(kind, payload)``: ``json`` text, ``raw`` bytes, ``form`` / ``multipart`` dicts."""
    if endpoint.body is None:
        return st.just(("none", None))
    ids = world["ids"]
    fields = endpoint.body
    values = json_values(ids)
    known = st.fixed_dictionaries({}, optional={name: values for name in fields})
    extra = st.dictionaries(st.text(max_size=8), values, max_size=2)
    objects = st.builds(lambda a, b: {**b, **a}, known, extra)
    choices = [objects, values]
    if endpoint.template is not None:
        choices += [mutations(resolve(endpoint.template, world), fields, values)] * 4
    json_bodies = st.one_of(choices).map(lambda v: ("json", dumps(v)))
    raw = st.tuples(
        st.just("raw"),
        st.tuples(
            st.sampled_from(RAW_BODIES) | st.binary(max_size=40),
            st.sampled_from(["application/json", "text/plain", "application/xml"]),
        ),
    )
    options = [json_bodies, json_bodies, raw]
    if endpoint.form or endpoint.upload:
        text = (
            st.text(max_size=20)
            | st.sampled_from(NASTY_TEXT)
            | st.sampled_from([str(i) for i in ids])
        )
        form = st.dictionaries(st.sampled_from(fields) if fields else st.text(), text, max_size=4)
        options.append(st.tuples(st.sampled_from(["form", "multipart"]), form))
    if endpoint.upload:
        options.extend([uploads(), uploads()])
    return st.one_of(options)


def uploads() -> st.SearchStrategy:
    names = st.text(min_size=1, max_size=30) | st.sampled_from(
        [
            *(
                "中" * 200 + ".mp4",
                "视" * 300,
                "../../x.mp4",
                "a\x00b.mp4",
                ".mp4",
                "x." + "4" * 300,
            ),
            *("clip.mp4", "..", "", "a" * 400 + ".mp4", "\ud800.mp4", 'a"b.mp4', "a\r\nb.mp4"),
        ]
    )
    contents = st.sampled_from([mp4_bytes(64), b"", b"not a video", b"\x1a\x45\xdf\xa3rest"])
    types = st.sampled_from(["video/mp4", "video/webm", "text/plain", "", "video/mp4; x=\x00"])
    extra = st.dictionaries(st.sampled_from(["filename", "file"]), st.sampled_from(NASTY_TEXT))
    return st.tuples(st.just("upload"), st.tuples(names, contents, types, extra))


def send(client: APIClient, endpoint: Endpoint, path: str, query: str, body: tuple) -> Any:
    url = f"{path}?{query}" if query else path
    kind, payload = body
    method = endpoint.method
    if kind == "none":
        return client.generic(method, url)
    if kind == "json":
        data = payload.encode("utf-8", "surrogatepass")
        return client.generic(method, url, data, content_type="application/json")
    if kind == "raw":
        data, content_type = payload
        return client.generic(method, url, data, content_type=content_type)
    if kind == "form":
        data = urlencode(payload, errors="surrogatepass")
        return client.generic(method, url, data, content_type="application/x-www-form-urlencoded")
    if kind == "multipart":
        return client.generic(method, url, *multipart(payload))
    name, content, content_type, extra = payload
    return client.generic(method, url, *multipart(extra, (name, content, content_type)))


BOUNDARY = "fuzzboundary"


def multipart(fields: dict[str, str], upload: tuple | None = None) -> tuple[bytes, str]:
    """A multipart body written by hand: Django's test helpers refuse the odd file names and
    unencodable text a client may still send."""

    def raw(text: str) -> bytes:
        return text.encode("utf-8", "surrogatepass")

    parts = [
        b'Content-Disposition: form-data; name="' + raw(key) + b'"\r\n\r\n' + raw(value)
        for key, value in fields.items()
    ]
    if upload is not None:
        name, content, content_type = upload
        parts.append(
            b'Content-Disposition: form-data; name="file"; filename="'
            + raw(name)
            + b'"\r\nContent-Type: '
            + raw(content_type)
            + b"\r\n\r\n"
            + content
        )
    delimiter = b"--" + BOUNDARY.encode()
    body = b"".join(delimiter + b"\r\n" + part + b"\r\n" for part in parts)
    return body + delimiter + b"--\r\n", f"multipart/form-data; boundary={BOUNDARY}"


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_no_input_gets_a_5xx_and_refusals_change_nothing(endpoint: Endpoint, world):
    client = world["staff"] if endpoint.staff else world["client"]

    # A refusal leaves the state as it was, so it is read again only after an accepted request.
    state = [snapshot(world["media_root"])]

    @FUZZ
    @given(request=requests_for(endpoint, world))
    def fuzz(request: tuple) -> None:
        path, query, body = request

        response = send(client, endpoint, path, query, body)

        assert response.status_code < 500, response.content[:500]
        after = snapshot(world["media_root"])
        if 400 <= response.status_code < 500:
            assert_error_envelope(endpoint.dialect, response)
            assert after == state[0], (response.status_code, response.content)
        state[0] = after

    fuzz()
