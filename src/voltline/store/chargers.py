"""Chargers (identity unique system-wide, owned by a team, placed on a site) and their connectors."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.domain.ids import ChargerId, ConnectorId, GroupId, Ref, SiteId, TeamId
from voltline.errors import ConflictError, NotFoundError
from voltline.store._common import new_uuid, ref_clause, stamped
from voltline.store.schema import chargers, connectors, sites
from voltline.store.sites import get_root_group_id

# The largest value an INTEGER column holds on PostgreSQL; larger refs name nothing.
MAX_ROW_ID = 2**31 - 1

# The charger fields a site's connector list nests under `charger`.
_NESTED_CHARGER = (
    chargers.c.uuid.label("charger_uuid"),
    chargers.c.identity.label("charger_identity"),
    chargers.c.connection_status.label("charger_connection_status"),
    chargers.c.status.label("charger_status"),
    chargers.c.group_id.label("charger_group_id"),
)


class IdentityTakenError(ConflictError):
    """Another charger already has this identity."""

    def __init__(self, identity: str) -> None:
        super().__init__(f"A charger with identity {identity!r} already exists.")
        self.identity = identity


def _ref_clause(table: Any, ref: Ref) -> ColumnElement[bool]:
    if isinstance(ref, int) and not 0 < ref <= MAX_ROW_ID:
        raise NotFoundError(table.name)
    return ref_clause(table, ref)


async def _one(conn: AsyncConnection, query: Any, what: str) -> RowMapping:
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        raise NotFoundError(what)
    return row


async def identity_taken(conn: AsyncConnection, identity: str) -> bool:
    """True when some charger already has this identity."""
    return await conn.scalar(select(chargers.c.id).where(chargers.c.identity == identity)) is not None


async def create_charger(conn: AsyncConnection, identity: str, pincode: str, values: dict[str, Any]) -> RowMapping:
    """Insert a never-seen charger; IdentityTakenError when the identity exists."""
    if await identity_taken(conn, identity):
        raise IdentityTakenError(identity)
    row = {"uuid": new_uuid(), "identity": identity, "pincode": pincode, "connection_status": "never_seen", **values}
    try:
        charger_id = await conn.scalar(insert(chargers).values(stamped(row, created=True)).returning(chargers.c.id))
    except IntegrityError:
        raise IdentityTakenError(identity) from None
    return await get_charger_by_id(conn, ChargerId(int(charger_id or 0)))


async def get_charger_by_id(conn: AsyncConnection, charger_id: ChargerId) -> RowMapping:
    """One charger by its id, whoever owns it."""
    return await _one(conn, select(chargers).where(chargers.c.id == charger_id), "charger")


async def get_charger_by_identity(conn: AsyncConnection, identity: str) -> RowMapping | None:
    """One charger by its OCPP identity, or None (a NUL names none: PostgreSQL text cannot hold one)."""
    if "\x00" in identity:
        return None
    return (await conn.execute(select(chargers).where(chargers.c.identity == identity))).mappings().first()


# Hot reads (every charger GET) are built once: constructing a statement costs more than running it.
_TEAM_CHARGER_BY_ID = select(chargers).where(
    chargers.c.team_id == bindparam("team_id"), chargers.c.id == bindparam("ref")
)
_TEAM_CHARGER_BY_UUID = select(chargers).where(
    chargers.c.team_id == bindparam("team_id"), chargers.c.uuid == bindparam("ref")
)


async def get_charger(conn: AsyncConnection, team_id: TeamId, ref: Ref) -> RowMapping:
    """One charger of the team by id or uuid; NotFoundError otherwise."""
    if isinstance(ref, int) and not 0 < ref <= MAX_ROW_ID:
        raise NotFoundError("chargers")
    query = _TEAM_CHARGER_BY_ID if isinstance(ref, int) else _TEAM_CHARGER_BY_UUID
    row = (await conn.execute(query, {"team_id": team_id, "ref": ref})).mappings().first()
    if row is None:
        raise NotFoundError("charger")
    return row


async def get_site_charger(conn: AsyncConnection, site_id: SiteId, ref: Ref) -> RowMapping:
    """One charger placed on the site by id or uuid; NotFoundError otherwise."""
    query = select(chargers).where(chargers.c.site_id == site_id, _ref_clause(chargers, ref))
    return await _one(conn, query, "charger")


async def list_team_chargers(conn: AsyncConnection, team_id: TeamId) -> list[RowMapping]:
    """Every charger the team owns, with or without a site, oldest first."""
    query = select(chargers).where(chargers.c.team_id == team_id).order_by(chargers.c.id)
    return list((await conn.execute(query)).mappings().all())


async def list_all_chargers(conn: AsyncConnection) -> list[RowMapping]:
    """Every charger in the system, oldest first (operator tools)."""
    return list((await conn.execute(select(chargers).order_by(chargers.c.id))).mappings().all())


async def list_site_chargers(conn: AsyncConnection, site_id: SiteId, *, offset: int, limit: int) -> list[RowMapping]:
    """A page of the chargers placed on the site, oldest first."""
    query = select(chargers).where(chargers.c.site_id == site_id).order_by(chargers.c.id).offset(offset).limit(limit)
    return list((await conn.execute(query)).mappings().all())


async def find_attach_candidates(
    conn: AsyncConnection, identity: str | None, serial_number: str | None
) -> list[RowMapping]:
    """The chargers an attach request may name: by identity, by serial number, or by both."""
    clauses = []
    if identity is not None:
        clauses.append(chargers.c.identity == identity)
    if serial_number is not None:
        clauses.append(chargers.c.serial_number == serial_number)
    if not clauses:
        return []
    query = select(chargers).where(*clauses).order_by(chargers.c.id).limit(10)
    return list((await conn.execute(query)).mappings().all())


async def update_charger(conn: AsyncConnection, charger_id: ChargerId, values: dict[str, Any]) -> RowMapping:
    """Change a charger's fields (an empty change still returns the charger)."""
    if values:
        await conn.execute(update(chargers).where(chargers.c.id == charger_id).values(stamped(values)))
    return await get_charger_by_id(conn, charger_id)


async def _reset_connector_groups(conn: AsyncConnection, charger_id: ChargerId) -> None:
    # A connector's own group belongs to the old site; after a move it inherits the charger's.
    reset = stamped({"group_id": None})
    await conn.execute(update(connectors).where(connectors.c.charger_id == charger_id).values(reset))


async def attach_charger(
    conn: AsyncConnection, charger_id: ChargerId, team_id: TeamId, site_id: SiteId, group_id: int, *, now: datetime
) -> RowMapping | None:
    """Move a charger that is on no site to the team, site and group; None when it is on a site.

    `attached_at` becomes `now`: the team's message log starts there (DESIGN: Charger security)."""
    free = (chargers.c.id == charger_id, chargers.c.site_id.is_(None))
    placement = stamped({"team_id": team_id, "site_id": site_id, "group_id": group_id, "attached_at": now})
    result = await conn.execute(update(chargers).where(*free).values(placement))
    if result.rowcount == 0:
        return None
    await _reset_connector_groups(conn, charger_id)
    return await get_charger_by_id(conn, charger_id)


async def detach_charger(conn: AsyncConnection, charger_id: ChargerId) -> None:
    """Take a charger off its site; it stays with its team and can be attached again."""
    await conn.execute(
        update(chargers).where(chargers.c.id == charger_id).values(stamped({"site_id": None, "group_id": None}))
    )
    await _reset_connector_groups(conn, charger_id)


async def get_site_placement(conn: AsyncConnection, site_id: SiteId) -> tuple[TeamId, int]:
    """The team and root group of a live site, whoever owns it (operator tools)."""
    query = select(sites.c.team_id).where(sites.c.id == site_id, sites.c.deleted_at.is_(None))
    team_id = await conn.scalar(query) if 0 < site_id <= MAX_ROW_ID else None
    if team_id is None:
        raise NotFoundError(f"No site with id {site_id}.")
    return TeamId(team_id), await get_root_group_id(conn, site_id)


_CHARGER_CONNECTORS = (
    select(connectors, *_NESTED_CHARGER)
    .join(chargers, chargers.c.id == connectors.c.charger_id)
    .where(connectors.c.charger_id == bindparam("charger_id"))
    .order_by(connectors.c.connector_id)
)


async def list_charger_connectors(conn: AsyncConnection, charger_id: ChargerId) -> list[RowMapping]:
    """A charger's connectors by OCPP number, each with the charger's group for inheritance."""
    return list((await conn.execute(_CHARGER_CONNECTORS, {"charger_id": charger_id})).mappings().all())


async def list_site_connectors(conn: AsyncConnection, site_id: SiteId, *, offset: int, limit: int) -> list[RowMapping]:
    """A page of the connectors of the chargers on the site, with their charger's summary."""
    query = (
        select(connectors, *_NESTED_CHARGER)
        .join(chargers, chargers.c.id == connectors.c.charger_id)
        .where(chargers.c.site_id == site_id)
        .order_by(connectors.c.charger_id, connectors.c.connector_id)
        .offset(offset)
        .limit(limit)
    )
    return list((await conn.execute(query)).mappings().all())


async def get_site_connector(conn: AsyncConnection, site_id: SiteId, ref: Ref) -> RowMapping:
    """One connector of a charger on the site, by id or uuid; NotFoundError otherwise."""
    query = (
        select(connectors, *_NESTED_CHARGER)
        .join(chargers, chargers.c.id == connectors.c.charger_id)
        .where(chargers.c.site_id == site_id, _ref_clause(connectors, ref))
    )
    return await _one(conn, query, "connector")


async def update_connector(
    conn: AsyncConnection, site_id: SiteId, row_id: ConnectorId, values: dict[str, Any]
) -> RowMapping:
    """Change a connector's settings and return it as the site's list shows it."""
    if values:
        await conn.execute(update(connectors).where(connectors.c.id == row_id).values(stamped(values)))
    return await get_site_connector(conn, site_id, row_id)


async def upsert_connector(
    conn: AsyncConnection, charger_id: ChargerId, connector_id: int, values: dict[str, Any]
) -> RowMapping:
    """Create connector `connector_id` of the charger on first sight, else change its fields."""
    where = (connectors.c.charger_id == charger_id, connectors.c.connector_id == connector_id)
    existing = await conn.scalar(select(connectors.c.id).where(*where))
    if existing is None:
        row = {"uuid": new_uuid(), "charger_id": charger_id, "connector_id": connector_id, **values}
        row.setdefault("phases", 3)
        row.setdefault("smart_charging_state", "none")
        await conn.execute(insert(connectors).values(stamped(row, created=True)))
    elif values:
        await conn.execute(update(connectors).where(connectors.c.id == existing).values(stamped(values)))
    return await _one(conn, select(connectors).where(*where), "connector")


def effective_group_id(connector: Mapping[str, Any]) -> GroupId | None:
    """The connector's own group, else its charger's (rows from the connector queries above)."""
    group_id = connector["group_id"] if connector["group_id"] is not None else connector["charger_group_id"]
    return None if group_id is None else GroupId(group_id)
