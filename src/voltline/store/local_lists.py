"""Local authorization lists: what we last set on each charger (one row per charger), and the team's listed tags."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline import codec
from voltline.domain.local_lists import LISTED_STATUSES, Entry
from voltline.store.schema import charger_local_lists, chargers, id_tags

COLUMNS = ("enabled", "supported", "version", "entries", "max_length", "chunk_length", "last_sync_at", "last_outcome")


@functools.cache
def _upsert(dialect: str, names: tuple[str, ...]) -> Any:
    """`INSERT .. ON CONFLICT (charger_id) DO UPDATE` of the given columns, built once per dialect."""
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(charger_local_lists)
    changed = {name: statement.excluded[name] for name in (*names, "updated_at")}
    return statement.on_conflict_do_update(index_elements=["charger_id"], set_=changed)


async def get_local_list(conn: AsyncConnection, charger_id: int) -> RowMapping | None:
    """The charger's local-list row; None before anything was read or sent."""
    query = select(charger_local_lists).where(charger_local_lists.c.charger_id == charger_id)
    return (await conn.execute(query)).mappings().first()


async def save_local_list(conn: AsyncConnection, charger_id: int, now: datetime, **values: Any) -> None:
    """Set some columns of the charger's row (made on first use); `entries` is given as a dict."""
    unknown = set(values) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown local-list columns {sorted(unknown)}")
    if "entries" in values and values["entries"] is not None:
        values["entries"] = codec.encode_json(values["entries"]).decode()
    names = tuple(sorted(values))
    row = {"charger_id": charger_id, "version": 0, **values, "updated_at": now}
    await conn.execute(_upsert(conn.dialect.name, names), row)


def entries_of(row: RowMapping | None) -> dict[str, Entry]:
    """The snapshot of what the charger holds (empty when nothing was ever set)."""
    if row is None or row["entries"] is None:
        return {}
    held: dict[str, Entry] = codec.decode_json(row["entries"])
    return held


async def list_listed_tags(conn: AsyncConnection, team_id: int) -> list[RowMapping]:
    """The team's tags that belong on local lists (Accepted or Expired), by id."""
    query = (
        select(id_tags.c.id_tag, id_tags.c.status, id_tags.c.expiry_date, id_tags.c.parent_id_tag)
        .where(id_tags.c.team_id == team_id, id_tags.c.status.in_(LISTED_STATUSES))
        .order_by(id_tags.c.id)
    )
    return list((await conn.execute(query)).mappings())


async def team_has_tags(conn: AsyncConnection, team_id: int) -> bool:
    """True when the team has an id tag, whatever its status."""
    found = await conn.execute(select(id_tags.c.id).where(id_tags.c.team_id == team_id).limit(1))
    return found.first() is not None


async def get_charger_target(conn: AsyncConnection, charger_id: int) -> RowMapping | None:
    """The charger's id, uuid, identity, team and connection status; None when it is gone."""
    columns = (chargers.c.id, chargers.c.uuid, chargers.c.identity, chargers.c.team_id, chargers.c.connection_status)
    return (await conn.execute(select(*columns).where(chargers.c.id == charger_id))).mappings().first()


async def list_online_team_charger_ids(conn: AsyncConnection, team_id: int) -> list[int]:
    """The team's chargers that are online now."""
    query = select(chargers.c.id).where(chargers.c.team_id == team_id, chargers.c.connection_status == "online")
    return [int(row[0]) for row in (await conn.execute(query.order_by(chargers.c.id))).all()]
