"""Load-balancing groups: a tree per site under its root group."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.domain.ids import ChargerId, GroupId, MeterId, Ref, SiteId, TeamId
from voltline.errors import NotFoundError
from voltline.store._common import new_uuid, ref_clause, stamped, utcnow
from voltline.store.schema import chargers, connectors, groups, meters


async def get_group(conn: AsyncConnection, site_id: SiteId, ref: Ref) -> RowMapping:
    """One group of the site by id or uuid; NotFoundError otherwise."""
    row = (
        (await conn.execute(select(groups).where(groups.c.site_id == site_id, ref_clause(groups, ref))))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFoundError("group")
    return row


async def list_groups(conn: AsyncConnection, site_id: SiteId, *, offset: int, limit: int) -> list[RowMapping]:
    """A page of the site's groups, oldest (the root) first."""
    query = select(groups).where(groups.c.site_id == site_id).order_by(groups.c.id).offset(offset).limit(limit)
    return list((await conn.execute(query)).mappings().all())


async def get_parent_map(conn: AsyncConnection, site_id: SiteId) -> dict[GroupId, GroupId | None]:
    """The site's tree as `group -> parent`."""
    rows = await conn.execute(select(groups.c.id, groups.c.group_id).where(groups.c.site_id == site_id))
    return {GroupId(row.id): None if row.group_id is None else GroupId(row.group_id) for row in rows}


async def create_group(conn: AsyncConnection, site_id: SiteId, values: dict[str, Any]) -> RowMapping:
    """Insert a group of the site (`values` names its parent in `group_id`)."""
    row = {"uuid": new_uuid(), "site_id": site_id, **values}
    group_id = await conn.scalar(groups.insert().values(stamped(row, created=True)).returning(groups.c.id))
    return await get_group(conn, site_id, int(group_id or 0))


async def update_group(conn: AsyncConnection, site_id: SiteId, group_id: GroupId, values: dict[str, Any]) -> RowMapping:
    """Change a group's fields."""
    if values:
        await conn.execute(update(groups).where(groups.c.id == group_id).values(stamped(values)))
    return await get_group(conn, site_id, group_id)


async def delete_group(conn: AsyncConnection, group: RowMapping) -> None:
    """Remove a (non-root) group; its child groups, chargers and connectors move to its parent."""
    group_id, parent_id, now = group["id"], group["group_id"], utcnow()
    moved = {"group_id": parent_id, "updated_at": now}
    await conn.execute(update(groups).where(groups.c.group_id == group_id).values(moved))
    await conn.execute(update(chargers).where(chargers.c.group_id == group_id).values(moved))
    await conn.execute(update(connectors).where(connectors.c.group_id == group_id).values(moved))
    await conn.execute(groups.delete().where(groups.c.id == group_id))


async def team_has_meter(conn: AsyncConnection, team_id: TeamId, meter_id: MeterId) -> bool:
    """True when the meter exists and belongs to the team."""
    found = await conn.scalar(select(meters.c.id).where(meters.c.id == meter_id, meters.c.team_id == team_id))
    return found is not None


async def get_site_charger_id(conn: AsyncConnection, site_id: SiteId, ref: Ref) -> ChargerId | None:
    """The id of a charger of the site named by id or uuid, or None."""
    query = select(chargers.c.id).where(chargers.c.site_id == site_id, ref_clause(chargers, ref))
    charger_id = await conn.scalar(query)
    return None if charger_id is None else ChargerId(charger_id)


async def assign_charger(conn: AsyncConnection, group_id: GroupId, charger_id: ChargerId) -> None:
    """Put a whole charger in the group; its connectors inherit the charger's group."""
    now = utcnow()
    await conn.execute(update(chargers).where(chargers.c.id == charger_id).values(group_id=group_id, updated_at=now))
    await conn.execute(
        update(connectors).where(connectors.c.charger_id == charger_id).values(group_id=None, updated_at=now)
    )
