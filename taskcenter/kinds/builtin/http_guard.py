"""Where ``http.request`` may connect: checked once per hop, then held to (SSRF guard).

Two gaps let a user reach internal services through a guard that only reads the URL:

* **Parser disagreement.** The guard and the HTTP client must read the same host. Python's
  ``urlsplit`` ends the authority at ``/?#`` while urllib3 also ends it at a backslash, so
  ``http://127.0.0.1:8000\\@1.1.1.1/`` was checked as 1.1.1.1 and sent to 127.0.0.1. A URL is
  therefore refused unless its authority is plain: no backslash, control character or
  whitespace anywhere, no ``user@``, and a host that is a DNS name, a dotted-quad IPv4 address
  or a bracketed IPv6 address. Numeric shorthands (``127.1``, ``2130706433``, ``0x7f.1``,
  ``017700000001``) are refused too: resolvers read them as addresses, in more than one way.
* **Resolving twice.** Checking a name and then letting the client resolve it again lets a DNS
  server answer a public address to the check and a loopback one to the connection. The host
  is resolved once, every address it resolves to is checked, and ``PinnedAdapter`` connects to
  the first of them, while the Host header, TLS SNI and the certificate check still name the
  host.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool

from taskcenter.errors import PermanentError, RetryableError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# host[:port], host being a bracketed IPv6 literal or letters, digits, dots, "_" and "-".
AUTHORITY = re.compile(
    r"\A(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9._-]+))(?::(?P<port>[0-9]{1,5}))?\Z"
)
LABEL = re.compile(r"\A[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\Z")
# A last label that URL parsers and resolvers read as a number, making the host an address.
NUMERIC_LABEL = re.compile(r"\A(?:[0-9]+|0x[0-9a-f]*)\Z")
DEFAULT_PORTS = {"http": 80, "https": 443}


class UnsafeURL(ValueError):
    """The URL's host could be read differently by the guard and by the HTTP client."""


@dataclass(frozen=True)
class Target:
    """Where a URL points, as both the guard and the HTTP client read it."""

    scheme: str
    host: str  # a lower-case DNS name, a dotted-quad IPv4 address or a bare IPv6 address
    port: int

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def _describe(char: str) -> str:
    if char == "\\":
        return "a backslash"
    if char.isspace():
        return f"whitespace (U+{ord(char):04X})"
    return f"a control character (U+{ord(char):04X})"


def _check_name(name: str) -> str:
    bare = name[:-1] if name.endswith(".") else name
    labels = bare.split(".")
    if len(bare) > 253 or not all(LABEL.match(label) for label in labels):
        raise UnsafeURL(f"{name!r} is not a valid host name.")
    if NUMERIC_LABEL.match(labels[-1]):
        raise UnsafeURL(
            f"{name!r} reads as a numeric address; write an IPv4 address as four decimal "
            "numbers without leading zeros (e.g. 93.184.216.34)."
        )
    return name


def parse_target(url: str) -> Target:
    """The scheme, host and port ``url`` names; ``UnsafeURL`` when they could be misread."""
    bad = next((c for c in url if c == "\\" or c.isspace() or ord(c) < 0x20 or c == "\x7f"), None)
    if bad is not None:
        raise UnsafeURL(
            f"Must not contain {_describe(bad)}: HTTP clients and URL parsers disagree on "
            "where such a URL's host ends."
        )
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise UnsafeURL(f"Not a valid URL: {exc}.") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UnsafeURL("Only http and https URLs are allowed.")
    if "@" in parts.netloc:
        raise UnsafeURL(
            "Must not carry a user name or password (user@host): send credentials in a header."
        )
    match = AUTHORITY.match(parts.netloc)
    if match is None:
        raise UnsafeURL(
            "The host must be an ASCII DNS name (xn-- form for international names), a "
            "dotted-quad IPv4 address or a bracketed IPv6 address, with an optional port."
        )
    if match["ipv6"] is not None:
        try:
            host = str(ipaddress.IPv6Address(match["ipv6"]))
        except ValueError:
            raise UnsafeURL(f"[{match['ipv6']}] is not a valid IPv6 address.") from None
    else:
        host = match["name"].lower()
        try:
            host = str(ipaddress.IPv4Address(host))
        except ValueError:
            host = _check_name(host)
    port = int(match["port"]) if match["port"] else DEFAULT_PORTS[scheme]
    if not 1 <= port <= 65535:
        raise UnsafeURL(f"Port {port} is out of range.")
    return Target(scheme=scheme, host=host, port=port)


def _allowed_networks() -> list[Network]:
    return [
        ipaddress.ip_network(net, strict=False)
        for net in settings.TASKCENTER["HTTP_ALLOWED_NETWORKS"]
    ]


def refused_reason(address: Address) -> str | None:
    """Why ``address`` may not be called (``"loopback"``, ``"private"``...), or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if settings.TASKCENTER["HTTP_ALLOW_PRIVATE_ADDRESSES"]:
        return None
    if any(address in network for network in _allowed_networks()):
        return None
    # Most specific first: 0.0.0.0 and 127.0.0.1 are also "private" in Python's tables.
    for label, flag in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
    ):
        if flag:
            return label
    return None if address.is_global else "non-public"


def checked_address(target: Target) -> str:
    """Resolve ``target``'s host once and return the address to connect to.

    Every address the host resolves to must pass, not only the first: a name that also
    resolves to an internal address is refused rather than raced.
    """
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise RetryableError(f"Cannot resolve host {target.host!r}: {exc}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise RetryableError(f"Host {target.host!r} resolved to no address")
    for raw in addresses:
        address = ipaddress.ip_address(raw.split("%")[0])
        reason = refused_reason(address)
        if reason:
            raise PermanentError(
                f"Refusing to connect to {target.host} ({address} is a {reason} address). "
                "Set TASKCENTER_HTTP_ALLOW_PRIVATE=true or TASKCENTER_HTTP_ALLOWED_NETWORKS "
                "to allow internal targets."
            )
    return addresses[0]


class PinnedAdapter(HTTPAdapter):
    """A transport that sends each request to the address checked for its host, and nowhere
    else: a host with no pinned address is refused instead of being resolved again.

    The pool connects to the address; the Host header is the URL's host, and for https the
    SNI name and the certificate check are the URL's host too (urllib3's ``server_hostname``).
    """

    def __init__(self) -> None:
        super().__init__(max_retries=0)
        self._pins: dict[Target, str] = {}

    def pin(self, target: Target, address: str) -> None:
        self._pins[target] = address

    def _pinned(self, request: requests.PreparedRequest) -> tuple[Target, str]:
        # Read the URL requests is about to send, not the one we checked: if the two named
        # different hosts, the lookup misses and nothing is sent.
        try:
            target = parse_target(request.url or "")
        except UnsafeURL as exc:
            raise PermanentError(f"Refusing to send to {request.url}: {exc}") from None
        address = self._pins.get(target)
        if address is None:
            raise PermanentError(f"Refusing to send to {target.host}: its address was not checked")
        return target, address

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: bool | str,
        proxies: dict[str, str] | None = None,
        cert: str | tuple[str, str] | None = None,
    ) -> HTTPConnectionPool:
        target, address = self._pinned(request)
        _, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        if target.scheme == "https":
            pool_kwargs["server_hostname"] = target.host
        return self.poolmanager.connection_from_host(
            host=address, port=target.port, scheme=target.scheme, pool_kwargs=pool_kwargs
        )

    def add_headers(self, request: requests.PreparedRequest, **kwargs: Any) -> None:
        # The connection is to an address, so http.client would write the address as Host.
        request.headers["Host"] = self._pinned(request)[0].host_header


def pinned_session() -> tuple[requests.Session, PinnedAdapter]:
    """A session whose every request goes through one ``PinnedAdapter``.

    ``trust_env`` is off: a proxy from the environment would resolve the host itself, and
    ``.netrc`` credentials must not be sent to a user-chosen host.
    """
    session = requests.Session()
    session.trust_env = False
    adapter = PinnedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session, adapter
