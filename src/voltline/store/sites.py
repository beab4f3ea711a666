"""Sites (soft-deleted) and their root load-balancing group."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.domain.ids import Ref, SiteId, TeamId
from voltline.errors import NotFoundError
from voltline.store._common import new_uuid, ref_clause, stamped, utcnow
from voltline.store.schema import chargers, connectors, groups, sites

_CHARGERS_COUNT = (
    select(func.count())
    .where(chargers.c.site_id == sites.c.id)
    .correlate(sites)
    .scalar_subquery()
    .label("chargers_count")
)
_LIVE = sites.c.deleted_at.is_(None)


async def create_site(conn: AsyncConnection, team_id: TeamId, values: dict[str, Any]) -> RowMapping:
    """Insert a site and its root group (capacity: the site's main fuse)."""
    row = {"uuid": new_uuid(), "team_id": team_id, **values}
    row.setdefault("main_fuse_amperage", 25)
    site_id = await conn.scalar(insert(sites).values(stamped(row, created=True)).returning(sites.c.id))
    root = {"uuid": new_uuid(), "site_id": site_id, "group_id": None, "total_amps": row["main_fuse_amperage"]}
    await conn.execute(insert(groups).values(stamped(root, created=True)))
    return await get_site(conn, team_id, int(site_id or 0))


async def get_site(conn: AsyncConnection, team_id: TeamId, ref: Ref) -> RowMapping:
    """One live site of the team by id or uuid; NotFoundError otherwise."""
    query = select(sites, _CHARGERS_COUNT).where(sites.c.team_id == team_id, ref_clause(sites, ref), _LIVE)
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        raise NotFoundError("site")
    return row


async def get_site_id(conn: AsyncConnection, team_id: TeamId, ref: Ref) -> SiteId:
    """Only the id of one live site of the team (cheap existence check)."""
    site_id = await conn.scalar(select(sites.c.id).where(sites.c.team_id == team_id, ref_clause(sites, ref), _LIVE))
    if site_id is None:
        raise NotFoundError("site")
    return SiteId(site_id)


_TEAM_SITES_PAGE = (
    select(sites, _CHARGERS_COUNT)
    .where(sites.c.team_id == bindparam("team_id"), _LIVE)
    .order_by(sites.c.id)
    .offset(bindparam("offset"))
    .limit(bindparam("limit"))
)


async def list_sites(conn: AsyncConnection, team_id: TeamId, *, offset: int, limit: int) -> list[RowMapping]:
    """A page of the team's live sites, oldest first (statement built once: this is a hot read)."""
    params = {"team_id": team_id, "offset": offset, "limit": limit}
    return list((await conn.execute(_TEAM_SITES_PAGE, params)).mappings().all())


async def update_site(conn: AsyncConnection, team_id: TeamId, ref: Ref, values: dict[str, Any]) -> RowMapping:
    """Change a live site's fields; a new main fuse is also the root group's capacity."""
    site_id = await get_site_id(conn, team_id, ref)
    if values:
        await conn.execute(update(sites).where(sites.c.id == site_id).values(stamped(values)))
    if "main_fuse_amperage" in values:
        root = await get_root_group_id(conn, site_id)
        amps = {"total_amps": values["main_fuse_amperage"]}
        await conn.execute(update(groups).where(groups.c.id == root).values(stamped(amps)))
    return await get_site(conn, team_id, site_id)


async def delete_site(conn: AsyncConnection, team_id: TeamId, ref: Ref) -> None:
    """Soft-delete a site; its chargers are detached so that they can be attached elsewhere."""
    site_id = await get_site_id(conn, team_id, ref)
    now = utcnow()
    await conn.execute(update(sites).where(sites.c.id == site_id).values(deleted_at=now, updated_at=now))
    site_chargers = select(chargers.c.id).where(chargers.c.site_id == site_id)
    await conn.execute(
        update(connectors).where(connectors.c.charger_id.in_(site_chargers)).values(group_id=None, updated_at=now)
    )
    await conn.execute(
        update(chargers).where(chargers.c.site_id == site_id).values(site_id=None, group_id=None, updated_at=now)
    )


async def get_root_group_id(conn: AsyncConnection, site_id: SiteId) -> int:
    """The id of the site's root group."""
    query = select(groups.c.id).where(groups.c.site_id == site_id, groups.c.group_id.is_(None)).order_by(groups.c.id)
    group_id = await conn.scalar(query.limit(1))
    if group_id is None:
        raise NotFoundError("group")
    return int(group_id)
