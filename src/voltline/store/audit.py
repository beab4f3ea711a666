"""The audit log: rows appended by the services, read newest first by a team."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import insert, select
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
