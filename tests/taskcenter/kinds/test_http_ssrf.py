"""``http.request`` cannot be steered to an internal address: real listeners that must stay silent.

Every test serves a "victim" on loopback (127.0.0.1 and ::1, one port) that an attacker wants
to reach, and, where a hop must be allowed, an "allowed" server on 127.0.0.2 with the same port,
which ``TASKCENTER_HTTP_ALLOWED_NETWORKS`` lets through. The victim must see no request, the task
must end FAILED naming the refusal, and its one execution FAILED. DNS is the only thing faked
(a resolver that changes its answer); the guard, the pinned connection and the servers are real.
"""

from __future__ import annotations

import socket
import ssl

import pytest
import requests

from taskcenter.execution.runner import run_attempt
from taskcenter.models import ExecutionStatus, Status, Task
from tests.support.http_server import TestHTTPServer

pytestmark = pytest.mark.django_db

ALLOWED_ADDRESS = "127.0.0.2"


class Servers:
    """The allowed server and the loopback victims, all on one port."""

    def __init__(self) -> None:
        for _ in range(20):
            self.allowed = TestHTTPServer(ALLOWED_ADDRESS)
            self.port = self.allowed.port
            try:
                self.victim = TestHTTPServer("127.0.0.1", self.port)
            except OSError:  # the port is taken on 127.0.0.1: pick another
                self.allowed.server_close()
                continue
            break
        else:
            pytest.fail("No port free on both 127.0.0.2 and 127.0.0.1")
        self.victim6 = TestHTTPServer("::1", self.port) if socket.has_ipv6 else None

    @property
    def running(self) -> list[TestHTTPServer]:
        return [s for s in (self.allowed, self.victim, self.victim6) if s is not None]

    @property
    def victim_hits(self) -> list[tuple[str, str]]:
        return self.victim.hits + (self.victim6.hits if self.victim6 else [])


@pytest.fixture
def servers(settings):
    settings.TASKCENTER = {
        **settings.TASKCENTER,
        "HTTP_ALLOW_PRIVATE_ADDRESSES": False,
        "HTTP_ALLOWED_NETWORKS": [f"{ALLOWED_ADDRESS}/32"],
    }
    running = Servers()
    for server in running.running:
        server.__enter__()
    yield running
    for server in running.running:
        server.__exit__(None, None, None)


@pytest.fixture
def resolver(monkeypatch):
    """DNS for made-up names: ``answers[name]`` lists the address each successive lookup gets
    (the last one repeats); every other name goes to the real resolver. ``lookups`` counts."""
    real = socket.getaddrinfo
    answers: dict[str, list[str]] = {}
    lookups: dict[str, int] = {}

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        n = lookups[host] = lookups.get(host, 0) + 1
        address = answers[host][min(n, len(answers[host])) - 1]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers, lookups


def run_stored(make_task, url: str) -> Task:
    """Run a task holding ``url`` as if it had been stored before URLs were checked this way."""
    task = make_task("http.request", {"url": "http://example.com/"}, start=True)
    Task.objects.filter(pk=task.pk).update(parameters={**task.parameters, "url": url})
    run_attempt(task.pk, worker_id="test")
    task.refresh_from_db()
    return task


def run_url(make_task, url: str) -> Task:
    task = make_task("http.request", {"url": url}, start=True)
    run_attempt(task.pk, worker_id="test")
    task.refresh_from_db()
    return task


def assert_refused(task: Task, *words: str) -> None:
    assert task.status == Status.FAILED
    assert task.error_message.startswith("Refusing"), task.error_message
    for word in words:
        assert word in task.error_message
    assert task.result is None
    [execution] = task.executions.all()
    assert execution.status == ExecutionStatus.FAILED


# Forms whose host the URL parser and the HTTP client could read differently: refused as
# written, whatever the address policy. ``{p}`` is the victim's port.
MISREAD_FORMS = {
    "backslash before @": ("http://127.0.0.1:{p}\\@1.1.1.1/../_control", "backslash"),
    "backslash in path": ("http://1.1.1.1\\.127.0.0.1:{p}/", "backslash"),
    "user": ("http://user@127.0.0.1:{p}/", "user name or password"),
    "user and password": ("http://user:pass@127.0.0.1:{p}/", "user name or password"),
    "public host as user": ("http://1.1.1.1@127.0.0.1:{p}/", "user name or password"),
    "@ split across": ("http://1.1.1.1:80@127.0.0.1:{p}/", "user name or password"),
    "tab": ("http://127.0.0.1:{p}\t@1.1.1.1/", "whitespace"),
    "space": ("http://1.1.1.1 @127.0.0.1:{p}/", "whitespace"),
    "newline": ("http://127.0.0.1:{p}/\nHost: 1.1.1.1", "whitespace"),
    # NUL is refused with every JSON parameter (PostgreSQL cannot store it); these are not.
    "SOH": ("http://127.0.0.1:{p}\x01.example.com/", "control character"),
    "DEL": ("http://127.0.0.1:{p}\x7f.example.com/", "control character"),
    "no-break space": ("http://127.0.0.1:{p}\u00a0/", "whitespace"),
    "127.1": ("http://127.1:{p}/", "numeric address"),
    "decimal": ("http://2130706433:{p}/", "numeric address"),
    "hex": ("http://0x7f000001:{p}/", "numeric address"),
    "dotted hex": ("http://0x7f.1:{p}/", "numeric address"),
    "octal": ("http://017700000001:{p}/", "numeric address"),
    "dotted octal": ("http://0177.0.0.1:{p}/", "numeric address"),
    "trailing dot": ("http://127.0.0.1.:{p}/", "numeric address"),
    "IPv6 zone": ("http://[::1%25lo]:{p}/", "host must be"),
    "fullwidth dots": ("http://127\uff0e0\uff0e0\uff0e1:{p}/", "host must be"),
}


@pytest.mark.parametrize(("url", "word"), MISREAD_FORMS.values(), ids=MISREAD_FORMS.keys())
def test_misreadable_urls_are_refused_at_creation_naming_url(api, servers, url, word):
    response = api.post(
        "/api/v1/tasks",
        {"task_type": "http.request", "parameters": {"url": url.format(p=servers.port)}},
        format="json",
    )

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "parameters", "url"]
    assert not Task.objects.exists()
    assert servers.victim_hits == []


@pytest.mark.parametrize(("url", "word"), MISREAD_FORMS.values(), ids=MISREAD_FORMS.keys())
def test_misreadable_stored_urls_fail_at_run_time_without_a_request(
    make_task, servers, settings, url, word
):
    # Even with internal targets allowed: a URL that could be misread is never sent.
    settings.TASKCENTER = {**settings.TASKCENTER, "HTTP_ALLOW_PRIVATE_ADDRESSES": True}

    task = run_stored(make_task, url.format(p=servers.port))

    assert_refused(task, word)
    assert servers.victim_hits == []
    assert servers.allowed.hits == []


INTERNAL_FORMS = {
    "localhost": ("http://localhost:{p}/_control", "loopback"),
    "127.0.0.1": ("http://127.0.0.1:{p}/_control", "loopback"),
    "upper-case LOCALHOST": ("http://LOCALHOST:{p}/_control", "loopback"),
    "[::1]": ("http://[::1]:{p}/_control", "loopback"),
    "[::ffff:127.0.0.1]": ("http://[::ffff:127.0.0.1]:{p}/_control", "loopback"),
    "[::ffff:7f00:1]": ("http://[::ffff:7f00:1]:{p}/_control", "loopback"),
    "0.0.0.0": ("http://0.0.0.0:{p}/_control", "unspecified"),  # noqa: S104  (a target)
    "127.0.0.3 next to the allowed one": ("http://127.0.0.3:{p}/_control", "loopback"),
}


@pytest.mark.parametrize(("url", "reason"), INTERNAL_FORMS.values(), ids=INTERNAL_FORMS.keys())
def test_internal_targets_fail_without_a_request(make_task, servers, url, reason):
    task = run_url(make_task, url.format(p=servers.port))

    assert_refused(task, f"is a {reason} address", "TASKCENTER_HTTP_ALLOW_PRIVATE")
    assert servers.victim_hits == []


@pytest.mark.parametrize(
    "url",
    [v[0] for k, v in INTERNAL_FORMS.items() if "127.0.0.3" not in k],
    ids=[k for k in INTERNAL_FORMS if "127.0.0.3" not in k],
)
def test_the_same_targets_reach_the_victim_when_internal_targets_are_allowed(
    make_task, servers, settings, url
):
    # The control for the test above: its silence is the guard's doing, not a dead listener.
    settings.TASKCENTER = {**settings.TASKCENTER, "HTTP_ALLOW_PRIVATE_ADDRESSES": True}
    if "::1]" in url and servers.victim6 is None:
        pytest.skip("no IPv6 loopback")

    task = run_url(make_task, url.format(p=servers.port).replace("/_control", "/ok"))

    assert task.status == Status.COMPLETED, task.error_message
    assert [path for _, path in servers.victim_hits] == ["/ok"]


@pytest.mark.parametrize(
    ("location", "words"),
    [
        ("http://127.0.0.1:{p}/_control", ["is a loopback address"]),
        ("http://localhost:{p}/_control", ["is a loopback address"]),
        ("http://[::1]:{p}/_control", ["is a loopback address"]),
        ("http://169.254.169.254/latest/meta-data", ["is a link-local address"]),
        ("http://127.0.0.1:{p}\\@127.0.0.2:{p}/_control", ["backslash"]),
        ("http://127.0.0.2:{p}@127.0.0.1:{p}/_control", ["user name or password"]),
        ("http://2130706433:{p}/_control", ["numeric address"]),
    ],
)
def test_redirect_from_an_allowed_target_to_an_internal_one_is_refused(
    make_task, servers, location, words
):
    target = location.format(p=servers.port)
    path = f"/redirect?to={requests.utils.quote(target, safe='')}"

    task = run_url(make_task, f"{servers.allowed.url}{path}")

    assert_refused(task, *words)
    assert servers.allowed.hits == [("GET", path)]
    assert servers.victim_hits == []


def test_redirect_between_allowed_hops_is_still_followed(make_task, servers):
    task = run_url(make_task, f"{servers.allowed.url}/redirect?to=/ok")

    assert task.status == Status.COMPLETED, task.error_message
    assert task.result["url"] == f"{servers.allowed.url}/ok"
    assert [path for _, path in servers.allowed.hits] == ["/redirect?to=/ok", "/ok"]
    assert servers.victim_hits == []


def test_dns_rebinding_connects_to_the_checked_address(make_task, servers, resolver):
    answers, lookups = resolver
    # Allowed at the check, loopback for anyone who asks again.
    answers["rebind.test"] = [ALLOWED_ADDRESS, "127.0.0.1"]
    url = f"http://rebind.test:{servers.port}/echo"

    task = run_url(make_task, url)

    assert task.status == Status.COMPLETED, task.error_message
    assert lookups["rebind.test"] == 1
    assert servers.allowed.hits == [("GET", "/echo")]
    assert servers.victim_hits == []
    # The request named the host, not the address it was pinned to.
    echoed = requests.models.complexjson.loads(task.result["body"])
    assert echoed["headers"]["Host"] == f"rebind.test:{servers.port}"
    # And a client that resolves the name again would have been fooled: the rebinding is real.
    requests.get(url, timeout=5)
    assert servers.victim_hits == [("GET", "/echo")]


def test_each_redirect_hop_is_resolved_and_checked_again(make_task, servers, resolver):
    answers, lookups = resolver
    answers["rebind.test"] = [ALLOWED_ADDRESS, "127.0.0.1"]

    task = run_url(make_task, f"http://rebind.test:{servers.port}/redirect?to=/_control")

    assert_refused(task, "rebind.test (127.0.0.1 is a loopback address)")
    assert lookups["rebind.test"] == 2
    assert servers.allowed.hits == [("GET", "/redirect?to=/_control")]
    assert servers.victim_hits == []


def test_a_name_resolving_to_any_internal_address_is_refused(make_task, servers, monkeypatch):
    real = socket.getaddrinfo

    def both(host, port, *args, **kwargs):
        if host != "mixed.test":
            return real(host, port, *args, **kwargs)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (ALLOWED_ADDRESS, port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", both)

    task = run_url(make_task, f"http://mixed.test:{servers.port}/ok")

    assert_refused(task, "127.0.0.1 is a loopback address")
    assert servers.allowed.hits == []
    assert servers.victim_hits == []


@pytest.fixture
def tls_server(settings, resolver, monkeypatch):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("pinned.test").configure_cert(context)
    settings.TASKCENTER = {
        **settings.TASKCENTER,
        "HTTP_ALLOW_PRIVATE_ADDRESSES": False,
        "HTTP_ALLOWED_NETWORKS": [f"{ALLOWED_ADDRESS}/32"],
    }
    answers, _ = resolver
    answers["pinned.test"] = [ALLOWED_ADDRESS]
    # The worker's trust store is the only thing swapped: it trusts this test CA.
    with ca.cert_pem.tempfile() as ca_path:
        monkeypatch.setattr(requests.adapters, "DEFAULT_CA_BUNDLE_PATH", ca_path)
        with TestHTTPServer(ALLOWED_ADDRESS, tls=context) as server:
            yield server


def test_https_to_a_pinned_address_still_checks_the_hosts_certificate(make_task, tls_server):
    task = run_url(make_task, f"https://pinned.test:{tls_server.port}/ok")

    assert task.status == Status.COMPLETED, task.error_message
    assert task.result["status_code"] == 200
    assert tls_server.sni == ["pinned.test"]
    assert tls_server.hits == [("GET", "/ok")]


def test_https_by_address_fails_the_certificate_check(make_task, tls_server):
    # The certificate names pinned.test, not 127.0.0.2: verification is on and uses the URL's host.
    task = run_url(make_task, f"https://{ALLOWED_ADDRESS}:{tls_server.port}/ok")

    assert task.status == Status.QUEUED  # a connection error, retried
    assert "CERTIFICATE_VERIFY_FAILED" in task.error_message
    assert tls_server.hits == []
