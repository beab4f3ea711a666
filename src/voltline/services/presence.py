"""Charger presence (DESIGN: OCPP, Charger security): who may connect, online and offline, the charger's placement.

The gateway's connections call these; each owns its transaction and publishes `connected` or
`disconnected` (bus/events.py) after its commit. The caller keeps a charger's status writes in
the order it decided them (one turn per charger while its sockets overlap). The lines go to the
`voltline.ocpp` log, where operators look for a charger's comings and goings: one when it drops
and one when it returns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.engine import RowMapping

from voltline.bus.events import SMART_EVENTS, encode_event
from voltline.domain.identities import IDENTITY_MAX, is_valid_identity
from voltline.domain.ids import ChargerId, SiteId
from voltline.services import audit
from voltline.services.runtime import Runtime
from voltline.store import ocpp_state
from voltline.store.chargers import get_charger_by_identity

log = logging.getLogger("voltline.ocpp")


async def admit_charger(runtime: Runtime, identity: str) -> RowMapping | None:
    """The charger row for a connecting identity (auto-registered when allowed), or None.

    Any stored identity is found, also one from before the identity rule; only a valid identity is
    auto-registered, and none while the minimum security profile is above 0 (they start at 0).
    """
    if not identity or len(identity) > IDENTITY_MAX:
        return None
    async with runtime.db.read() as conn:
        row = await get_charger_by_identity(conn, identity)
    settings = runtime.settings
    if row is not None or not settings.ocpp_auto_register or settings.ocpp_min_security_profile > 0:
        return row
    if not is_valid_identity(identity):
        return None
    async with runtime.db.write() as conn:
        row = await ocpp_state.auto_register_charger(conn, identity)
        detail = {"identity": identity, "auto_registered": True}
        await audit.record(runtime.clock, conn, None, "charger.created", ("charger", row["uuid"]), detail=detail)
    log.info("%s: auto-registered; `voltline chargers show %s` shows its pincode for attach", identity, identity)
    return row


async def mark_all_offline(runtime: Runtime) -> int:
    """After a restart of the only gateway no socket is open: every charger shown online goes offline."""
    async with runtime.db.write() as conn:
        return await ocpp_state.mark_all_offline(conn)


async def mark_gateway_offline(runtime: Runtime, gateway_id: str) -> int:
    """DESIGN "Cluster": the gateway stopped or went silent: its chargers offline, `disconnected` published."""
    async with runtime.db.write() as conn:
        rows = await ocpp_state.mark_gateway_offline(conn, gateway_id, runtime.clock.now())
    for row in rows:
        await _announce(runtime, "disconnected", ChargerId(row["id"]), row["site_id"])
    return len(rows)


async def holding_gateways(runtime: Runtime) -> set[str]:
    """The gateways the store names as holding a charger's socket."""
    async with runtime.db.read() as conn:
        return await ocpp_state.holding_gateways(conn)


@dataclass(frozen=True)
class Socket:
    """One socket of a charger as its status writes name it (`token`: DESIGN "Cluster", later sockets sort higher)."""

    charger_id: ChargerId
    site_id: SiteId | None
    identity: str
    version: str
    token: str


async def mark_connected(runtime: Runtime, socket: Socket, *, replacing: bool) -> bool:
    """A socket of the charger opened: online, logged unless it replaces an open one, `connected` published.

    False, and nothing recorded, when a later socket of the charger holds it (DESIGN "Cluster").
    """
    before = await _mark_online(runtime, socket)
    if before is None:
        log.info("%s: a later socket holds the charger; this one is not recorded", socket.identity)
        return False
    if not replacing:
        log.info("%s: online (was %s)", socket.identity, before)
    await _announce(runtime, "connected", socket.charger_id, socket.site_id)
    return True


async def mark_returned(runtime: Runtime, socket: Socket) -> None:
    """A charger marked offline for silence sent a frame: online again, logged, `connected` published."""
    if await _mark_online(runtime, socket) is None:
        return  # a later socket holds the charger
    log.info("%s: back online", socket.identity)
    await _announce(runtime, "connected", socket.charger_id, socket.site_id)


async def _mark_online(runtime: Runtime, socket: Socket) -> str | None:
    async with runtime.db.write() as conn:
        return await ocpp_state.mark_online(
            conn,
            socket.charger_id,
            runtime.clock.now(),
            ocpp_version=socket.version,
            gateway_id=runtime.node_id,
            token=socket.token,
        )


async def mark_disconnected(runtime: Runtime, socket: Socket, reason: str, *, announce: bool, release: bool) -> None:
    """The socket dropped (`release`: it closed): offline, logged and `disconnected` published.

    Nothing is logged or published when it was offline already (`announce` false) or when a later
    socket of the charger holds it: the row names that one (DESIGN "Cluster").
    """
    ours = True
    try:
        async with runtime.db.write() as conn:
            ours = await ocpp_state.mark_offline(
                conn, socket.charger_id, socket.token, release=release, now=runtime.clock.now()
            )
    except Exception:  # task boundary: the socket is gone either way
        log.exception("%s: could not record going offline", socket.identity)
    if announce and ours:
        log.info("%s: offline (%s)", socket.identity, reason)
        await _announce(runtime, "disconnected", socket.charger_id, socket.site_id)


async def get_placement(runtime: Runtime, charger_id: ChargerId) -> RowMapping | None:
    """The charger's current team, site and lenient flag (it may be attached or detached while connected)."""
    async with runtime.db.read() as conn:
        return await ocpp_state.get_placement(conn, charger_id)


async def _announce(runtime: Runtime, kind: str, charger_id: ChargerId, site_id: SiteId | None) -> None:
    await runtime.bus.publish(SMART_EVENTS, encode_event(kind, charger_id=int(charger_id), site_id=site_id))
