"""The audit log: rows appended by the services, read newest first by a team, deleted when older than its retention."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.domain.ids import TeamId
from voltline.store.schema import audit_log

FILTERS = ("object_type", "object_id", "actor_kind", "actor_id", "actor_user_id", "action", "outcome")


async def insert_audit_row(conn: AsyncConnection, values: Mapping[str, Any]) -> None:
    """Append one row."""
    await conn.execute(insert(audit_log).values(dict(values)))


async def list_audit_rows(
    conn: AsyncConnection, team_id: TeamId, filters: Mapping[str, Any], *, offset: int, limit: int
) -> list[RowMapping]:
    """A page of the team's rows, newest first; `filters` match columns of FILTERS exactly."""
    query = select(audit_log).where(audit_log.c.team_id == team_id)
    for name, value in filters.items():
        if name in FILTERS and value is not None:
            query = query.where(audit_log.c[name] == value)
    query = query.order_by(audit_log.c.id.desc()).offset(offset).limit(limit)
    return list((await conn.execute(query)).mappings().all())


async def audit_id_range(conn: AsyncConnection) -> tuple[int, int] | None:
    """The lowest and highest row id (None when the log is empty)."""
    low, high = (await conn.execute(select(func.min(audit_log.c.id), func.max(audit_log.c.id)))).one()
    return None if low is None else (int(low), int(high))


async def first_audit_id_since(conn: AsyncConnection, cutoff: datetime) -> int | None:
    """The id of the first row (in id order) recorded at or after `cutoff`; rows come in time order."""
    query = select(audit_log.c.id).where(audit_log.c.at >= cutoff).order_by(audit_log.c.id).limit(1)
    found = await conn.scalar(query)
    return None if found is None else int(found)


async def delete_audit_rows_before(conn: AsyncConnection, cutoff: datetime, start: int, end: int) -> int:
    """Delete the rows with `start` <= id < `end` recorded before `cutoff`; how many went."""
    result = await conn.execute(
        delete(audit_log).where(audit_log.c.id >= start, audit_log.c.id < end, audit_log.c.at < cutoff)
    )
    return int(result.rowcount or 0)
