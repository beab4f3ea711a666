"""Who is really on the other end: the client address and TLS as seen through trusted proxies.

Only a peer listed in `VOLTLINE_TRUSTED_PROXIES` (DESIGN: Charger security) is believed about
`X-Forwarded-For` and `X-Forwarded-Proto`; from anyone else those headers are ignored. Both the
OCPP endpoint (throttling, logs, "is this TLS") and the REST side call these functions with
the TCP peer address, the request headers and `parse_networks(settings.trusted_proxies)`:

    address = client_address(websocket.client.host if websocket.client else None, websocket.headers, trusted)
    secure = is_tls(websocket.url.scheme, peer, websocket.headers, trusted)

`X-Forwarded-For` is read right to left: each trusted proxy appends the address it saw, so the
right-most address that is not itself a trusted proxy is the client (anything to its left was
written by the client and proves nothing).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from functools import cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Networks = tuple[Network, ...]
UNKNOWN_ADDRESS = "unknown"
TLS_SCHEMES = frozenset({"https", "wss"})


@cache
def parse_networks(text: str) -> Networks:
    """Comma-separated addresses or CIDR networks (`10.0.0.1, 192.168.0.0/16, ::1`); ValueError if malformed."""
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in text.split(",") if item.strip())


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_trusted(address: str | None, trusted: Networks) -> bool:
    """True when the address lies in one of the trusted proxy networks."""
    if address is None or not trusted:
        return False
    parsed = _address(address)
    return parsed is not None and any(parsed in network for network in trusted)


def _header_values(headers: Mapping[str, str], name: str) -> list[str]:
    """Every comma-separated value of a header, over repeated header lines when the mapping has them."""
    getlist = getattr(headers, "getlist", None)
    lines = list(getlist(name)) if getlist is not None else [headers.get(name) or ""]
    return [value.strip() for line in lines for value in line.split(",") if value.strip()]


def client_address(peer: str | None, headers: Mapping[str, str], trusted: Networks) -> str:
    """The client's address: the TCP peer, or, behind trusted proxies, the right-most untrusted `X-Forwarded-For` hop.

    `peer` None (no socket address, e.g. a Unix socket) gives "unknown".
    """
    if peer is None:
        return UNKNOWN_ADDRESS
    if not is_trusted(peer, trusted):
        return peer
    hops = _header_values(headers, "x-forwarded-for")
    for hop in reversed(hops):
        if not is_trusted(hop, trusted):
            parsed = _address(hop)
            return str(parsed) if parsed is not None else hop
    return hops[0] if hops else peer


def is_tls(scheme: str, peer: str | None, headers: Mapping[str, str], trusted: Networks) -> bool:
    """True when the client's connection is encrypted: https/wss here, or a trusted proxy's `X-Forwarded-Proto`.

    Of several `X-Forwarded-Proto` values the right-most counts: it is what the proxy next to us saw.
    """
    if scheme in TLS_SCHEMES:
        return True
    if not is_trusted(peer, trusted):
        return False
    values = _header_values(headers, "x-forwarded-proto")
    return bool(values) and values[-1].lower() in TLS_SCHEMES
