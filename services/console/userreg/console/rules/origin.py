"""Which POSTs come from the console's own pages, and whether the console is served over https."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def is_https(scheme: str, peer: str | None, forwarded_proto: str | None, trusted: Sequence[Network]) -> bool:
    """Served over https: the connection itself is TLS, or a trusted proxy (TRUSTED_PROXIES) in
    front of us says its client used https. Anyone else's X-Forwarded-Proto is ignored."""
    if scheme == "https":
        return True
    if not forwarded_proto or not peer:
        return False
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    if not any(address.version == network.version and address in network for network in trusted):
        return False
    return forwarded_proto.split(",", 1)[0].strip().lower() == "https"


def origin_of(scheme: str, host: str) -> str:
    """`scheme://host[:port]` as a browser serialises the console's origin."""
    return f"{scheme}://{host}".lower()


def is_same_origin_post(headers: Mapping[str, str], own_origin: str) -> bool:
    """Whether a POST comes from one of our own pages (defence in depth beside the CSRF token).

    Browsers send fetch metadata (`Sec-Fetch-Site`) with every request: it must say same-origin.
    An older browser sends `Origin` with a POST: it must be ours. A request with neither comes from
    no browser page (a script or a test client); it still needs the session and its CSRF token."""
    site = headers.get("Sec-Fetch-Site")
    if site is not None:
        return site.strip().lower() == "same-origin"
    origin = headers.get("Origin")
    if origin is None:
        return True
    return origin.strip().rstrip("/").lower() == own_origin
