"""Who may read ``/metrics``: a client on an allowed network, or one presenting the token.

``TASKCENTER_METRICS_ALLOW`` lists networks (CIDR; default loopback only) whose clients need
nothing more; ``TASKCENTER_METRICS_TOKEN`` lets any other client in with
``Authorization: Bearer <token>``. The client address is the connection's (``REMOTE_ADDR``),
never a forwarded header, which anyone can write.
"""

from __future__ import annotations

import hmac
import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def address_allowed(address: str, cidrs: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 from a dual-stack socket
    return any(ip in network for network in _networks(tuple(cidrs)))


def refusal(request: HttpRequest) -> int | None:
    """None when ``request`` may read the metrics, else the status to refuse it with.

    A token that is presented must be right (401 otherwise, wherever it comes from). Without
    one, an allowed address passes; any other is 401 when a token would let it in, 403 when
    nothing would.
    """
    token: str = settings.TASKCENTER_METRICS_TOKEN
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, presented = header.partition(" ")
        if (
            token
            and scheme.lower() == "bearer"
            and hmac.compare_digest(presented.strip().encode(), token.encode())
        ):
            return None
        return 401
    if address_allowed(request.META.get("REMOTE_ADDR", ""), settings.TASKCENTER_METRICS_ALLOW):
        return None
    return 401 if token else 403
