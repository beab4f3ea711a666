"""Requests without a valid token are limited per client address (api/auth.py; DESIGN 429 body).

The test server listens on 127.0.0.1; clients connect from other loopback addresses
(127.0.0.2, 127.0.0.3) so that each is a peer of its own, as two machines would be.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.clocked import ClockedServer, SteppedClock
from tests.conftest import LiveServer, server_settings
from voltline.api.auth import address_key

LIMIT = 3


@pytest.fixture
def guarded(fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClockedServer]:
    """A server that allows 3 requests a minute per address without a valid token."""
    settings = server_settings(
        fresh_database("sqlite"), str(tmp_path_factory.mktemp("data")), rate_limit_unauthenticated=LIMIT
    )
    live = ClockedServer(settings, "sqlite", clock=SteppedClock())
    live.start()

    async def start_of_a_window() -> None:  # so that no one-minute window ends during the test
        await live.clock.advance(60 - live.clock.monotonic() % 60 + 0.5)

    live.run(start_of_a_window)
    yield live
    live.stop()


def client_from(live: ClockedServer, address: str, token: str | None = None) -> httpx.Client:
    """A client whose connections come from `address`."""
    headers = {"Accept": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=live.base_url, headers=headers, transport=transport, timeout=30)


def test_requests_without_a_valid_token_are_429_after_the_address_budget(guarded: ClockedServer) -> None:
    with client_from(guarded, "127.0.0.2") as client:
        missing = client.get("/api/v2/user")
        malformed = client.get("/api/v2/user", headers={"Authorization": "Basic abc"})
        wrong = client.get("/api/v2/teams", headers={"Authorization": "Bearer not-a-token"})
        blocked = client.get("/api/v2/user", headers={"Authorization": "Bearer another-guess"})
    assert [r.status_code for r in (missing, malformed, wrong)] == [401, 401, 401]
    assert (blocked.status_code, blocked.json()) == (429, {"message": "Too Many Attempts."})
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60
    assert blocked.headers["X-RateLimit-Limit"] == str(LIMIT)


def test_a_throttled_address_still_serves_a_valid_token(guarded: ClockedServer) -> None:
    account = guarded.account()
    with client_from(guarded, "127.0.0.2") as guest:
        codes = [guest.get("/api/v2/user").status_code for _ in range(LIMIT + 1)]
    with client_from(guarded, "127.0.0.2", account.token) as member:
        served = member.get("/api/v2/user")
    assert codes == [401] * LIMIT + [429]
    assert served.status_code == 200
    assert served.headers.get("X-RateLimit-Limit") is None  # the token's own limit is off here


def test_the_budget_is_per_address(guarded: ClockedServer) -> None:
    with client_from(guarded, "127.0.0.2") as first:
        codes = [first.get("/api/v2/user").status_code for _ in range(LIMIT + 1)]
    with client_from(guarded, "127.0.0.3") as second:
        other = second.get("/api/v2/user")
    assert codes[-1] == 429
    assert other.status_code == 401


def test_the_budget_comes_back_in_the_next_minute(guarded: ClockedServer) -> None:
    with client_from(guarded, "127.0.0.2") as client:
        codes = [client.get("/api/v2/user").status_code for _ in range(LIMIT + 1)]
        guarded.run(lambda: guarded.clock.advance(60))
        later = client.get("/api/v2/user")
    assert codes[-1] == 429
    assert later.status_code == 401


def test_zero_turns_the_guest_limit_off(server: LiveServer) -> None:
    """tests/conftest.py's server runs with `rate_limit_unauthenticated=0`."""
    with server.client() as client:
        codes = {client.get("/api/v2/user").status_code for _ in range(70)}
    assert codes == {401}


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb:cccc:dddd:eeee", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("", ""),
        ("testclient", "testclient"),
    ],
)
def test_ipv6_peers_share_the_budget_of_their_64(address: str, key: str) -> None:
    """An IPv6 subscriber gets a /64 (RFC 6177), so a budget per address would be one per guess."""
    assert address_key(address) == key
