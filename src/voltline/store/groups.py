"""Load-balancing groups: a tree per site under its root group."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.domain.ids import Ref, SiteId
from voltline.errors import NotFoundError
from voltline.store._common import ref_clause
from voltline.store.schema import groups


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
