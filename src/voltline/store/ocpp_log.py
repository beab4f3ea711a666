"""The OCPP message log: a charger's frames as the batched writer stored them, and their retention."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.domain.frames import LogEntry
from voltline.domain.ids import ChargerId, TeamId
from voltline.store.schema import ocpp_messages

LOG_COLUMNS = tuple(column.name for column in ocpp_messages.columns if column.name != "id")
ACTION_MAX = 64  # ocpp_messages.action is String(64)
MESSAGE_ID_MAX = 64  # ocpp_messages.message_id is String(64)


async def list_team_log(
    conn: AsyncConnection,
    charger_id: ChargerId,
    team_id: TeamId,
    since: datetime | None,
    *,
    action: str | None = None,
    offset: int,
    limit: int,
) -> list[RowMapping]:
    """A page of the frames the team may read, newest first: logged while the team owned the charger
    and not before `since`, the charger's current attachment (DESIGN: Charger security)."""
    query = select(ocpp_messages).where(ocpp_messages.c.charger_id == charger_id, ocpp_messages.c.team_id == team_id)
    if since is not None:
        query = query.where(ocpp_messages.c.created_at >= since)
    if action is not None:
        query = query.where(ocpp_messages.c.action == action)
    query = query.order_by(ocpp_messages.c.id.desc()).offset(offset).limit(limit)
    return list((await conn.execute(query)).mappings().all())


async def purge_ocpp_log(conn: AsyncConnection, older_than: datetime) -> int:
    """Delete every logged frame created before `older_than` (naive UTC); returns how many."""
    result = await conn.execute(delete(ocpp_messages).where(ocpp_messages.c.created_at < older_than))
    return int(result.rowcount or 0)


def log_rows(entries: Sequence[LogEntry], stamp: Callable[[datetime], Any]) -> list[tuple[Any, ...]]:
    """`ocpp_messages` rows (LOG_COLUMNS)."""
    return [
        (
            e.charger_id,
            e.team_id,
            e.direction[:3],
            e.message_type,
            e.message_id[:MESSAGE_ID_MAX],
            None if e.action is None else e.action[:ACTION_MAX],
            e.payload,
            stamp(e.created_at),
        )
        for e in entries
    ]
