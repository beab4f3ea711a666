"""domain.proxies: forwarded headers believed only from VOLTLINE_TRUSTED_PROXIES (DESIGN: Charger security)."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from voltline.domain.proxies import client_address, is_tls, is_trusted, parse_networks

TRUSTED = parse_networks("10.0.0.0/8, 192.168.1.1, ::1")


def test_networks_are_addresses_or_cidr_networks_and_anything_else_is_refused() -> None:
    assert [str(n) for n in parse_networks(" 10.0.0.0/8,192.168.1.1 ,, ::1")] == [
        "10.0.0.0/8",
        "192.168.1.1/32",
        "::1/128",
    ]
    assert parse_networks("") == ()
    for bad in ("10.0.0.0/33", "proxy.example.com", "10.0.0.1/8/8", "300.1.1.1"):
        with pytest.raises(ValueError):
            parse_networks(bad)


def test_an_untrusted_peer_is_the_client_whatever_it_forwards() -> None:
    headers = {"x-forwarded-for": "203.0.113.9"}
    assert client_address("198.51.100.7", headers, TRUSTED) == "198.51.100.7"
    assert client_address("198.51.100.7", headers, ()) == "198.51.100.7"
    assert client_address("10.1.2.3", headers, ()) == "10.1.2.3"  # nothing is trusted by default


def test_behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() -> None:
    """A client may write anything left of what our proxies append: only the right-most untrusted hop counts."""
    spoofed = {"x-forwarded-for": "1.1.1.1, 203.0.113.9, 10.0.0.5"}
    assert client_address("10.0.0.1", spoofed, TRUSTED) == "203.0.113.9"
    assert client_address("::1", {"x-forwarded-for": "2001:db8::7"}, TRUSTED) == "2001:db8::7"
    assert client_address("10.0.0.1", {"x-forwarded-for": "203.0.113.9:51234"}, TRUSTED) == "203.0.113.9"
    assert client_address("10.0.0.1", {"x-forwarded-for": "[2001:db8::7]:443"}, TRUSTED) == "2001:db8::7"


def test_a_trusted_peer_without_a_forwarded_client_is_itself() -> None:
    assert client_address("10.0.0.1", {}, TRUSTED) == "10.0.0.1"
    assert client_address("10.0.0.1", {"x-forwarded-for": "10.0.0.7"}, TRUSTED) == "10.0.0.7"
    assert client_address(None, {"x-forwarded-for": "203.0.113.9"}, TRUSTED) == "unknown"


def test_repeated_forwarded_for_lines_are_read_together() -> None:
    """A proxy that adds its own header line instead of appending must not let the client's line win."""
    headers = Headers(raw=[(b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-for", b"203.0.113.9")])
    assert client_address("10.0.0.1", headers, TRUSTED) == "203.0.113.9"


def test_tls_is_our_own_scheme_or_a_trusted_proxys_forwarded_proto() -> None:
    assert is_tls("wss", "198.51.100.7", {}, ()) and is_tls("https", None, {}, ())
    assert not is_tls("ws", "198.51.100.7", {"x-forwarded-proto": "https"}, TRUSTED)  # untrusted peer
    assert is_tls("ws", "10.0.0.1", {"x-forwarded-proto": "https"}, TRUSTED)
    assert is_tls("ws", "10.0.0.1", {"x-forwarded-proto": "WSS"}, TRUSTED)
    assert not is_tls("ws", "10.0.0.1", {"x-forwarded-proto": "http"}, TRUSTED)
    assert not is_tls("ws", "10.0.0.1", {}, TRUSTED)
    # The right-most value is what the proxy next to us saw; a client's own "https" to its left proves nothing.
    assert not is_tls("ws", "10.0.0.1", {"x-forwarded-proto": "https, http"}, TRUSTED)


def test_trust_needs_a_listed_address() -> None:
    assert is_trusted("10.200.3.4", TRUSTED) and is_trusted("192.168.1.1", TRUSTED)
    assert not is_trusted("192.168.1.2", TRUSTED)
    assert not is_trusted("not-an-address", TRUSTED) and not is_trusted(None, TRUSTED)
