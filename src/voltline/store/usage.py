"""Energy history reads: the writer's 15-minute rollups (store/rollups.py) summed per bucket.

Rows are scoped by the team and site stamped on them when they were written (DESIGN: data
model), then optionally narrowed to one charger or to a set of connectors (a group's).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.domain.groups import list_descendants
from voltline.domain.ids import ChargerId, GroupId, SiteId, TeamId
from voltline.store.groups import get_parent_map
from voltline.store.schema import chargers, connectors, energy_rollups

Key = tuple[int, int]  # (charger_id, connector_number)


async def sum_rollups(
    conn: AsyncConnection,
    team_id: TeamId,
    site_id: SiteId,
    start: datetime,
    end: datetime,
    *,
    charger_id: ChargerId | None = None,
    connector_keys: Collection[Key] | None = None,
) -> dict[datetime, int]:
    """Wh per 15-minute bucket start (naive UTC) in [start, end), summed over the chosen connectors."""
    if connector_keys is not None and not connector_keys:
        return {}
    rollup = energy_rollups.c
    query = select(rollup.bucket_start, func.sum(rollup.wh)).where(
        rollup.site_id == site_id, rollup.team_id == team_id, rollup.bucket_start >= start, rollup.bucket_start < end
    )
    if charger_id is not None:
        query = query.where(rollup.charger_id == charger_id)
    if connector_keys is not None:
        query = query.where(tuple_(rollup.charger_id, rollup.connector_number).in_(sorted(connector_keys)))
    rows = await conn.execute(query.group_by(rollup.bucket_start))
    return {bucket: int(wh) for bucket, wh in rows}


async def list_group_connector_keys(conn: AsyncConnection, site_id: SiteId, group_id: GroupId) -> set[Key]:
    """The connectors of the group and its sub-groups: their own group, else their charger's.

    Connectors that belong to no group at all count as the site's root group.
    """
    parents = await get_parent_map(conn, site_id)
    members: set[GroupId | None] = {group_id, *list_descendants(parents, group_id)}
    if parents.get(group_id, group_id) is None:
        members.add(None)
    query = (
        select(connectors.c.charger_id, connectors.c.connector_id, connectors.c.group_id, chargers.c.group_id)
        .join(chargers, chargers.c.id == connectors.c.charger_id)
        .where(chargers.c.site_id == site_id)
    )
    keys: set[Key] = set()
    for charger_id, number, own, inherited in await conn.execute(query):
        if (own if own is not None else inherited) in members:
            keys.add((int(charger_id), int(number)))
    return keys
