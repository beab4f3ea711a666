"""Charger authentication at upgrade (DESIGN: Charger security): profiles, HTTP Basic, one 401, throttling, proxies.

Real upgrade requests over real sockets from a `websockets` client. Peers of their own are made
from other loopback addresses (127.0.0.2, ...); behind the trusted proxy 127.0.0.1, `X-Forwarded-For`
names the client.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import insert
from websockets.exceptions import InvalidStatus

from tests.clocked import ClockedServer, SteppedClock
from tests.conftest import LiveServer, server_settings
from tests.ocpp.gateway_support import (
    BOOT,
    Raw,
    basic_auth,
    charger_row,
    charger_security,
    dedicated_server,
    open_charger,
    rows,
    run,
    team_charger,
    unique_identity,
)
from voltline.domain.auth_throttle import FIRST_WAIT
from voltline.domain.credentials import new_pincode
from voltline.services.accounts import Account
from voltline.store.schema import chargers

PASSWORD = "correct-horse-battery-staple"


class Refused(Exception):
    """The upgrade was answered with an HTTP error instead of 101."""


def connect_status(server: LiveServer, identity: str, **options: Any) -> int:
    """101 when the socket opened and a BootNotification was accepted; otherwise the refusal's status."""

    async def scenario() -> int:
        try:
            async with open_charger(server, identity, **options) as ws:
                answer = await Raw(ws).result("BootNotification", BOOT)
                assert answer["status"] == "Accepted"
                return 101
        except InvalidStatus as refused:
            return int(refused.response.status_code)

    return int(run(scenario()))


def refusal(server: LiveServer, identity: str, **options: Any) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (without Date) and body of a refused upgrade."""

    async def scenario() -> tuple[int, dict[str, str], bytes]:
        with pytest.raises(InvalidStatus) as refused:
            async with open_charger(server, identity, **options):
                pass
        response = refused.value.response
        headers = {k.lower(): v for k, v in response.headers.raw_items() if k.lower() != "date"}
        return response.status_code, headers, response.body

    result: tuple[int, dict[str, str], bytes] = run(scenario())
    return result


def login(identity: str, password: str = PASSWORD, *, via: str | None = None, **headers: str) -> dict[str, Any]:
    """Connection options: HTTP Basic as the identity, forwarded for `via` (an address behind the proxy)."""
    extra = {**basic_auth(identity, password), **{k.replace("_", "-"): v for k, v in headers.items()}}
    if via is not None:
        extra["X-Forwarded-For"] = via
    return {"additional_headers": extra}


def from_address(address: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Connection options that open the TCP connection from another loopback address."""
    return {**(options or {}), "local_addr": (address, 0)}


def protected_charger(api: httpx.Client, account: Account, profile: int = 1) -> str:
    """A charger of the team with PASSWORD on the given profile; its identity."""
    charger = team_charger(api, account, security_profile=None)
    charger_security(api, account, charger["id"], security_profile=profile, password=PASSWORD)
    return str(charger["identity"])


def refusals(server: LiveServer) -> dict[str, int]:
    """The gateway's counter of refused upgrades by reason."""
    return dict(server.app.app.state.gateway.counts.auth_failures)


def fake_address() -> str:
    """A client address behind the proxy that no other test uses."""
    return f"2001:db8::{uuid.uuid4().hex[:4]}"


# ---------------------------------------------------------------- profiles and HTTP Basic (shared server)


def test_a_new_charger_cannot_connect_until_it_has_a_password_or_profile_0(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """New chargers start at profile 1 without a password; a generated password, sent with Basic, opens it."""
    charger = team_charger(api, account, security_profile=None)
    identity = charger["identity"]
    assert connect_status(server, identity) == 401
    assert connect_status(server, identity, **login(identity, "a-password-never-set")) == 401
    generated = charger_security(api, account, charger["id"], generate_password=True)["password"]
    assert connect_status(server, identity) == 401
    assert connect_status(server, identity, **login(identity, generated)) == 101
    charger_security(api, account, charger["id"], security_profile=0)
    assert connect_status(server, identity) == 101


def test_the_basic_username_must_be_the_identity(server: LiveServer, api: httpx.Client, account: Account) -> None:
    identity = protected_charger(api, account)
    other = protected_charger(api, account)
    assert connect_status(server, identity, **login(other)) == 401  # the right password, someone else's name
    assert connect_status(server, identity, **login(identity.lower())) == 401
    assert connect_status(server, identity, **login(identity)) == 101


def test_an_unknown_identity_and_a_wrong_password_get_the_very_same_401(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """DESIGN: the upgrade answers cannot tell identities apart."""
    identity = protected_charger(api, account)
    wrong = refusal(server, identity, **login(identity, "not-the-password-at-all"))
    unknown = refusal(server, unique_identity("NOBODY"), **login("NOBODY", "not-the-password-at-all"))
    missing = refusal(server, identity)
    assert wrong == unknown == missing
    status, headers, body = wrong
    assert (status, body) == (401, b'{"message":"Unauthenticated."}')
    assert headers["www-authenticate"] == 'Basic realm="Voltline OCPP"'


def test_profile_2_is_refused_over_plain_ws(server: LiveServer, api: httpx.Client, account: Account) -> None:
    """Profile 2 is Basic over TLS only; without a trusted proxy, X-Forwarded-Proto is not believed."""
    identity = protected_charger(api, account, profile=2)
    assert connect_status(server, identity, **login(identity)) == 401
    assert connect_status(server, identity, **login(identity, X_Forwarded_Proto="https")) == 401
    assert refusal(server, identity, **login(identity)) == refusal(server, unique_identity("NOBODY"))


def test_each_refusal_is_logged_once_and_counted(
    server: LiveServer, api: httpx.Client, account: Account, caplog: pytest.LogCaptureFixture
) -> None:
    identity = protected_charger(api, account)
    before = refusals(server)
    with caplog.at_level(logging.WARNING, logger="voltline.ocpp"):
        connect_status(server, identity, **login(identity, "not-the-password-at-all"))
        connect_status(server, identity)
    lines = [r.getMessage() for r in caplog.records if identity in r.getMessage()]
    assert len(lines) == 2, lines
    assert "(wrong_password)" in lines[0] and "(no_credentials)" in lines[1]
    after = refusals(server)
    assert after.get("wrong_password", 0) - before.get("wrong_password", 0) >= 1
    assert after.get("no_credentials", 0) - before.get("no_credentials", 0) >= 1


# ---------------------------------------------------------------- a server behind a trusted proxy, on a stepped clock


@pytest.fixture(scope="module")
def proxied(
    server: LiveServer, fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClockedServer]:
    """A server of its own behind the trusted proxy 127.0.0.1, on a clock the tests move."""
    settings = server_settings(
        fresh_database(server.backend), str(tmp_path_factory.mktemp("data")), trusted_proxies="127.0.0.1"
    )
    live = ClockedServer(settings, server.backend, clock=SteppedClock())
    live.start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def proxied_api(proxied: ClockedServer) -> Iterator[tuple[httpx.Client, Account]]:
    account = proxied.account()
    with proxied.client(account) as client:
        yield client, account


def advance(live: ClockedServer, seconds: float) -> None:
    live.run(lambda: live.clock.advance(seconds))


def test_five_failures_make_that_address_wait_while_the_real_charger_gets_in(
    proxied: ClockedServer, proxied_api: tuple[httpx.Client, Account]
) -> None:
    """After 5 failures for an identity from one address within 60 s that address waits; the charger does not."""
    identity = protected_charger(*proxied_api)
    attacker, charger = fake_address(), fake_address()
    for _ in range(5):
        assert connect_status(proxied, identity, **login(identity, "guessing-the-password", via=attacker)) == 401
    before = refusals(proxied).get("throttled", 0)
    assert connect_status(proxied, identity, **login(identity, via=attacker)) == 401  # refused without checking
    assert refusals(proxied)["throttled"] == before + 1
    assert connect_status(proxied, identity, **login(identity, via=charger)) == 101  # the real charger
    advance(proxied, FIRST_WAIT + 0.5)
    assert connect_status(proxied, identity, **login(identity, via=attacker)) == 101


def test_a_burst_of_parallel_guesses_meets_the_throttle_after_five(
    proxied: ClockedServer, proxied_api: tuple[httpx.Client, Account]
) -> None:
    """30 guesses at once from one address: 5 are checked, 25 are refused without checking."""
    identity = protected_charger(*proxied_api)
    attacker = fake_address()
    before = refusals(proxied)

    async def burst() -> list[int]:
        async def guess(n: int) -> int:
            try:
                async with open_charger(proxied, identity, **login(identity, f"guess-number-{n:06d}", via=attacker)):
                    return 101
            except InvalidStatus as refused:
                return int(refused.response.status_code)

        return list(await asyncio.gather(*(guess(n) for n in range(30))))

    assert run(burst()) == [401] * 30
    after = refusals(proxied)
    assert after.get("wrong_password", 0) - before.get("wrong_password", 0) == 5
    assert after.get("throttled", 0) - before.get("throttled", 0) == 25
    assert connect_status(proxied, identity, **login(identity, via=attacker)) == 401


def test_the_wait_doubles_with_each_further_failure(
    proxied: ClockedServer, proxied_api: tuple[httpx.Client, Account]
) -> None:
    identity = protected_charger(*proxied_api)
    attacker = fake_address()
    for _ in range(5):
        connect_status(proxied, identity, **login(identity, "guessing-the-password", via=attacker))
    advance(proxied, FIRST_WAIT + 0.5)
    assert connect_status(proxied, identity, **login(identity, "guessing-again-wrong", via=attacker)) == 401
    advance(proxied, FIRST_WAIT + 0.5)  # the second wait is twice as long
    assert connect_status(proxied, identity, **login(identity, via=attacker)) == 401
    advance(proxied, FIRST_WAIT)
    assert connect_status(proxied, identity, **login(identity, via=attacker)) == 101


def test_an_address_failing_on_twenty_identities_waits_for_every_identity(
    proxied: ClockedServer, proxied_api: tuple[httpx.Client, Account]
) -> None:
    identity = protected_charger(*proxied_api)
    scanner, charger = fake_address(), fake_address()
    for n in range(20):
        assert connect_status(proxied, f"SCAN-{n}", **login(f"SCAN-{n}", "guessing-the-password", via=scanner)) == 401
    assert connect_status(proxied, identity, **login(identity, via=scanner)) == 401
    assert connect_status(proxied, identity, **login(identity, via=charger)) == 101


def test_forwarded_headers_of_an_untrusted_peer_are_not_believed(
    proxied: ClockedServer, proxied_api: tuple[httpx.Client, Account]
) -> None:
    """Only 127.0.0.1 is a trusted proxy: what 127.0.0.2 forwards counts for nothing, its failures are its own."""
    identity = protected_charger(*proxied_api)
    for n in range(5):  # five "different" clients, all really 127.0.0.2
        options = from_address("127.0.0.2", login(identity, "guessing-the-password", via=f"2001:db8::{n}"))
        assert connect_status(proxied, identity, **options) == 401
    fresh = from_address("127.0.0.2", login(identity, via=fake_address()))
    assert connect_status(proxied, identity, **fresh) == 401  # 127.0.0.2 waits, whoever it claims to forward
    assert connect_status(proxied, identity, **login(identity, via=fake_address())) == 101


def test_profile_2_behind_a_trusted_tls_proxy_is_accepted(
    proxied: ClockedServer, proxied_api: tuple[httpx.Client, Account]
) -> None:
    identity = protected_charger(*proxied_api, profile=2)
    assert connect_status(proxied, identity, **login(identity, via=fake_address())) == 401
    behind_tls = login(identity, via=fake_address(), X_Forwarded_Proto="https")
    assert connect_status(proxied, identity, **behind_tls) == 101
    untrusted = from_address("127.0.0.3", login(identity, X_Forwarded_Proto="https"))
    assert connect_status(proxied, identity, **untrusted) == 401


# ---------------------------------------------------------------- minimum profile and auto-registration


def test_the_minimum_security_profile_refuses_chargers_below_it(
    server: LiveServer, fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """VOLTLINE_OCPP_MIN_SECURITY_PROFILE=1: profile 0 is refused; auto-registration (profile 0) registers nothing."""
    settings = {"ocpp_min_security_profile": 1, "ocpp_auto_register": True}
    with dedicated_server(fresh_database, tmp_path_factory, server.backend, **settings) as live:
        account = live.account()
        with live.client(account) as api:
            open_one = team_charger(api, account)["identity"]
            protected = protected_charger(api, account)
        assert connect_status(live, open_one) == 401
        assert connect_status(live, protected, **login(protected)) == 101
        stranger = unique_identity("AUTO")
        assert connect_status(live, stranger) == 401
        assert rows(live, chargers.select().where(chargers.c.identity == stranger)) == []
        assert refusals(live)["below_minimum_profile"] == 1


@pytest.fixture(scope="module")
def registering(
    server: LiveServer, fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    with dedicated_server(fresh_database, tmp_path_factory, server.backend, ocpp_auto_register=True) as live:
        yield live


def test_auto_registered_chargers_are_profile_0_and_invalid_identities_are_not_registered(
    registering: LiveServer,
) -> None:
    identity = unique_identity("AUTO")
    assert connect_status(registering, identity) == 101
    assert charger_row(registering, identity)["security_profile"] == 0
    for bad in ("a%20b", "a%3Ab", "%3Cscript%3E", "%C3%A9-charger", "x" * 46):  # a b, a:b, <script>, é-charger
        assert connect_status(registering, bad) == 401
    stored = rows(registering, chargers.select().where(chargers.c.identity.in_(["a b", "a:b", "<script>"])))
    assert stored == []


def test_an_existing_identity_from_before_the_rule_still_connects(registering: LiveServer) -> None:
    """Rows that break the identity rule keep working, whatever their route can reach."""
    identity = f"legacy {uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC).replace(tzinfo=None)
    values = {"uuid": str(uuid.uuid4()), "identity": identity, "pincode": new_pincode(), "security_profile": 0}
    values |= {"connection_status": "never_seen", "license_smart": False, "license_pro": False}

    async def store() -> None:
        async with registering.runtime.db.write() as conn:
            await conn.execute(insert(chargers).values(**values, created_at=now, updated_at=now))

    registering.run(store)
    assert connect_status(registering, identity.replace(" ", "%20")) == 101
    assert charger_row(registering, identity)["connection_status"] in {"online", "offline"}


def test_api_links_carry_the_scheme_of_a_trusted_proxy_only(
    proxied: ClockedServer, proxied_api: tuple[httpx.Client, Account]
) -> None:
    """The same trust on the REST side: absolute pagination links follow X-Forwarded-Proto from 127.0.0.1 only."""
    _api, account = proxied_api
    path = f"/api/v2/teams/{account.team_id}/sites"
    headers = {"Authorization": f"Bearer {account.token}", "X-Forwarded-Proto": "https"}
    with httpx.Client(base_url=proxied.base_url, headers=headers) as trusted:
        assert trusted.get(path).json()["meta"]["path"].startswith("https://")
    untrusted = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=proxied.base_url, headers=headers, transport=untrusted) as other:
        assert other.get(path).json()["meta"]["path"].startswith("http://")
