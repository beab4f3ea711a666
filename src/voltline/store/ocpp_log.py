"""The OCPP message log: a charger's frames as the batched writer stored them, and their retention."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.domain.ids import ChargerId
from voltline.store.schema import ocpp_messages

if TYPE_CHECKING:
    from voltline.store.writer import LogEntry

LOG_COLUMNS = tuple(column.name for column in ocpp_messages.columns if column.name != "id")


async def list_charger_log(
    conn: AsyncConnection, charger_id: ChargerId, *, action: str | None = None, offset: int, limit: int
) -> list[RowMapping]:
    """A page of the charger's logged frames, newest first, optionally of one action only."""
    query = select(ocpp_messages).where(ocpp_messages.c.charger_id == charger_id)
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
            e.direction[:3],
            e.message_type,
            e.message_id[:64],
            None if e.action is None else e.action[:64],
            e.payload,
            stamp(e.created_at),
        )
        for e in entries
    ]
