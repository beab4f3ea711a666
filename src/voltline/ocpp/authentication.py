"""Who may open a charger's socket (DESIGN: Charger security): security profile, HTTP Basic, TLS, throttling.

Decided at upgrade, before the socket is accepted, per the charger's security profile:
0 identity only; 1 HTTP Basic, the username equal to the identity and the password checked
against its HMAC in constant time, over ws or wss; 2 the same, over TLS only (wss here, or a
trusted proxy's `X-Forwarded-Proto: https`). `VOLTLINE_OCPP_MIN_SECURITY_PROFILE` refuses
chargers below it. Every refusal is the same 401, so an unknown identity cannot be told from a
wrong password; its reason goes to the log once and to the gateway's counts
(`voltline_ocpp_auth_failures_total`). Failures are throttled per client address
(`domain.auth_throttle`); an address that must wait is refused without its password being
looked at. Checks of one identity from one address take turns, so a burst of parallel guesses
meets the throttle after its fifth failure like a sequence would.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
from collections.abc import Mapping
from typing import Any

from starlette.websockets import WebSocket

from voltline.domain.credentials import check_ocpp_password
from voltline.domain.identities import IDENTITY_MAX
from voltline.domain.proxies import client_address, is_tls
from voltline.ocpp.gateway import Gateway
from voltline.services import presence

log = logging.getLogger("voltline.ocpp")

# Compared against when there is no stored hash, so that every refusal costs the same HMAC.
_NO_HASH = "0" * 64


def basic_credentials(header: str) -> tuple[str, str] | None:
    """The username and password of an HTTP Basic `Authorization` header (RFC 7617), or None."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        raw = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        decoded = raw.decode()
    except UnicodeDecodeError:
        decoded = raw.decode("latin-1")
    username, colon, password = decoded.partition(":")
    return (username, password) if colon else None


def refusal_reason(
    charger: Mapping[Any, Any] | None,
    identity: str,
    credentials: tuple[str, str] | None,
    *,
    tls: bool,
    min_profile: int,
    secret_key: str,
) -> str | None:
    """Why this upgrade is refused (a counter label), or None when the charger may connect."""
    username, password = credentials or ("", "")
    stored = None if charger is None else charger["password_hash"]
    # Always one HMAC and one comparison: unknown identities and wrong passwords take the same work.
    password_ok = check_ocpp_password(secret_key, password, stored or _NO_HASH) and stored is not None
    if charger is None:
        return "unknown_identity"
    profile = int(charger["security_profile"])
    if profile < min_profile:
        return "below_minimum_profile"
    if profile == 0:
        return None
    if profile >= 2 and not tls:
        return "tls_required"
    if credentials is None:
        return "no_credentials"
    if stored is None:
        return "no_password_set"
    if not hmac.compare_digest(username.encode(), identity.encode()):
        return "wrong_username"
    return None if password_ok else "wrong_password"


async def admit_charger(websocket: WebSocket, gateway: Gateway, identity: str) -> Mapping[Any, Any] | None:
    """The charger row when its socket may open; None when refused (logged and counted; the caller answers 401)."""
    peer = websocket.client.host if websocket.client else None
    address = client_address(peer, websocket.headers, gateway.trusted_proxies)
    key = (address, identity[: IDENTITY_MAX + 1])  # longer paths name no charger; they need not be kept whole
    turn = gateway.auth_turns.get(key)
    if turn is None:
        turn = gateway.auth_turns[key] = asyncio.Lock()
    async with turn:
        return await _check(websocket, gateway, identity, key)


async def _check(
    websocket: WebSocket, gateway: Gateway, identity: str, key: tuple[str, str]
) -> Mapping[Any, Any] | None:
    address, throttled_identity = key
    shown = repr(identity[:64])  # the path is the client's: quoted and cut short in the log
    trusted = gateway.trusted_proxies
    peer = websocket.client.host if websocket.client else None
    now = gateway.runtime.clock.monotonic()
    wait = gateway.auth_throttle.wait(address, throttled_identity, now)
    if wait.seconds > 0:
        gateway.counts.auth_failure("throttled")
        if wait.first:
            log.warning("%s: refused from %s without checking: it waits %.0f s more", shown, address, wait.seconds)
        return None
    charger = await presence.admit_charger(gateway.runtime, identity)
    settings = gateway.runtime.settings
    reason = refusal_reason(
        charger,
        identity,
        basic_credentials(websocket.headers.get("authorization", "")),
        tls=is_tls(websocket.url.scheme, peer, websocket.headers, trusted),
        min_profile=settings.ocpp_min_security_profile,
        secret_key=gateway.runtime.secret_key,
    )
    if reason is None:
        gateway.auth_throttle.succeed(address, throttled_identity)
        return charger
    gateway.counts.auth_failure(reason)
    waits = gateway.auth_throttle.fail(address, throttled_identity, now)
    later = f"; {address} waits {waits:.0f} s before its next try" if waits else ""
    log.warning("%s: refused from %s (%s)%s", shown, address, reason, later)
    return None
