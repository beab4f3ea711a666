"""What the OCPP gateway records about a charger: connection, boot facts, statuses, auto-registration."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.domain.credentials import new_pincode
from voltline.domain.ids import ChargerId, TeamId
from voltline.store._common import stamped
from voltline.store.chargers import IdentityTakenError, create_charger, get_charger_by_identity, upsert_connector
from voltline.store.schema import chargers, teams

# The charger fields a session keeps in memory and refreshes on Boot and Heartbeat.
_PLACEMENT = (chargers.c.id, chargers.c.team_id, chargers.c.site_id, chargers.c.lenient)


async def auto_register_charger(conn: AsyncConnection, identity: str) -> RowMapping:
    """Make an unattached charger for an unknown identity, with a fresh pincode for attach.

    Security profile 0: the operator opted into identity-only chargers with auto-registration.
    """
    try:
        return await create_charger(conn, identity, new_pincode(), {"security_profile": 0})
    except IdentityTakenError:
        # Another connection registered it meanwhile.
        row = await get_charger_by_identity(conn, identity)
        assert row is not None
        return row


async def _set(conn: AsyncConnection, charger_id: ChargerId, values: dict[str, Any]) -> None:
    await conn.execute(update(chargers).where(chargers.c.id == charger_id).values(stamped(values)))


async def mark_online(
    conn: AsyncConnection, charger_id: ChargerId, now: datetime, *, ocpp_version: str, gateway_id: str, token: str
) -> str | None:
    """Record a connection or a return of the socket `token` held by `gateway_id`; the status it had before.

    DESIGN "Cluster", the newest connection wins: None, and nothing written, when the row names a
    later socket (tokens sort by when their socket opened).
    """
    before = await conn.scalar(select(chargers.c.connection_status).where(chargers.c.id == charger_id))
    values = {
        "connection_status": "online",
        "ocpp_version": ocpp_version,
        "last_seen_at": now,
        "last_connection_at": now,
        "gateway_id": gateway_id,
        "connection_token": token,
    }
    newest = or_(chargers.c.connection_token.is_(None), chargers.c.connection_token <= token)
    result = await conn.execute(update(chargers).where(chargers.c.id == charger_id, newest).values(stamped(values)))
    return str(before or "never_seen") if result.rowcount else None


async def mark_offline(
    conn: AsyncConnection, charger_id: ChargerId, token: str, *, release: bool, now: datetime | None = None
) -> bool:
    """Record that the socket `token` dropped (`release`: closed) or went silent; False if the row names another.

    DESIGN "Cluster": an old socket closing after a newer one (on any gateway) marked the charger
    online writes nothing. A closed socket also clears the gateway and token; a silent one keeps them.
    """
    values: dict[str, Any] = {"connection_status": "offline"}
    if now is not None:
        values["last_disconnection_at"] = now
    if release:
        values |= {"gateway_id": None, "connection_token": None}
    ours = and_(chargers.c.id == charger_id, chargers.c.connection_token == token)
    result = await conn.execute(update(chargers).where(ours).values(stamped(values)))
    return bool(result.rowcount)


async def mark_all_offline(conn: AsyncConnection) -> int:
    """After a restart of the only gateway: no socket is open, so no charger is online."""
    result = await conn.execute(
        update(chargers)
        .where(or_(chargers.c.connection_status == "online", chargers.c.gateway_id.is_not(None)))
        .values(connection_status="offline", gateway_id=None, connection_token=None)
    )
    return int(result.rowcount or 0)


async def mark_gateway_offline(conn: AsyncConnection, gateway_id: str, now: datetime | None = None) -> list[RowMapping]:
    """DESIGN "Cluster": the gateway is gone; its chargers go offline (disconnected `now`). Their ids and sites."""
    values: dict[str, Any] = {"connection_status": "offline", "gateway_id": None, "connection_token": None}
    if now is not None:
        values["last_disconnection_at"] = now
    statement = (
        update(chargers)
        .where(chargers.c.gateway_id == gateway_id)
        .values(stamped(values))
        .returning(chargers.c.id, chargers.c.site_id)
    )
    return list((await conn.execute(statement)).mappings().all())


async def holding_gateways(conn: AsyncConnection) -> set[str]:
    """The gateways the store names as holding a charger's socket."""
    rows = await conn.execute(select(chargers.c.gateway_id).where(chargers.c.gateway_id.is_not(None)).distinct())
    return {str(gateway_id) for (gateway_id,) in rows}


async def get_placement(conn: AsyncConnection, charger_id: ChargerId) -> RowMapping | None:
    """The charger's current team, site and lenient flag (a charger may be moved while connected)."""
    return (await conn.execute(select(*_PLACEMENT).where(chargers.c.id == charger_id))).mappings().first()


async def record_seen(conn: AsyncConnection, charger_id: ChargerId, now: datetime) -> RowMapping | None:
    """Stamp `last_seen_at` and `last_heartbeat_at` (a Heartbeat); returns the charger's placement and lenient flag."""
    await _set(conn, charger_id, {"last_seen_at": now, "last_heartbeat_at": now})
    return await get_placement(conn, charger_id)


async def record_boot(conn: AsyncConnection, charger_id: ChargerId, facts: dict[str, Any]) -> RowMapping | None:
    """Store what BootNotification said (vendor, model, serial, firmware, raw payload, interval, boot_accepted)."""
    await _set(conn, charger_id, facts)
    return await get_placement(conn, charger_id)


async def record_charger_status(conn: AsyncConnection, charger_id: ChargerId, values: dict[str, Any]) -> None:
    """Store a StatusNotification for connector 0: the charger's status, error and error info."""
    await _set(conn, charger_id, values)


async def record_connector_status(
    conn: AsyncConnection, charger_id: ChargerId, connector_number: int, values: dict[str, Any]
) -> RowMapping:
    """Store a StatusNotification for connector >= 1, creating the connector on first sight."""
    return await upsert_connector(conn, charger_id, connector_number, values)


async def record_firmware_status(conn: AsyncConnection, charger_id: ChargerId, status: str) -> None:
    """Store the latest FirmwareStatusNotification."""
    await _set(conn, charger_id, {"firmware_status": status})


async def record_diagnostics_status(conn: AsyncConnection, charger_id: ChargerId, status: str) -> None:
    """Store the latest DiagnosticsStatusNotification."""
    await _set(conn, charger_id, {"diagnostics_status": status})


async def get_authorization_mode(conn: AsyncConnection, team_id: TeamId | None) -> str:
    """The team's authorization mode; a charger of no team accepts every tag."""
    if team_id is None:
        return "accept_all"
    mode = await conn.scalar(select(teams.c.authorization_mode).where(teams.c.id == team_id))
    return str(mode or "accept_all")
