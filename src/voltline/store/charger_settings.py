"""The v3 charger settings (volttime-v3 §3.10): one row per charger, made on its first change."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.errors import NotFoundError
from voltline.store.schema import charger_settings, chargers, connectors, team_members, transactions

COLUMNS = ("lock_enabled", "lock_applied", "socket_lock_enabled", "plug_charge_enabled", "plug_charge_card")
DEFAULTS: dict[str, Any] = {"lock_enabled": False, "plug_charge_enabled": False}


@functools.cache
def _upsert(dialect: str, names: tuple[str, ...]) -> Any:
    """`INSERT .. ON CONFLICT (charger_id) DO UPDATE` of the given columns, built once per dialect."""
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(charger_settings)
    changed = {name: statement.excluded[name] for name in (*names, "updated_at")}
    return statement.on_conflict_do_update(index_elements=["charger_id"], set_=changed)


async def get_settings(conn: AsyncConnection, charger_id: int) -> RowMapping | None:
    """The charger's settings row; None while nothing was ever set (every setting off)."""
    query = select(charger_settings).where(charger_settings.c.charger_id == charger_id)
    return (await conn.execute(query)).mappings().first()


async def save_settings(conn: AsyncConnection, charger_id: int, now: datetime, **values: Any) -> None:
    """Set some columns of the charger's row (made on first use with every other setting off)."""
    unknown = set(values) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown charger-settings columns {sorted(unknown)}")
    names = tuple(sorted(values))
    row = {"charger_id": charger_id, **DEFAULTS, **values, "updated_at": now}
    await conn.execute(_upsert(conn.dialect.name, names), row)


async def is_blocked(conn: AsyncConnection, charger_id: int) -> bool:
    """Whether the charger is locked (`settings/lock` enabled): the v3 charger's `blocked`."""
    query = select(charger_settings.c.lock_enabled).where(charger_settings.c.charger_id == charger_id)
    return bool((await conn.execute(query)).scalar())


async def blocked_among(conn: AsyncConnection, charger_ids: Iterable[int]) -> set[int]:
    """Which of the chargers are locked (one query for a page of chargers)."""
    ids = [int(charger_id) for charger_id in charger_ids]
    if not ids:
        return set()
    query = select(charger_settings.c.charger_id).where(
        charger_settings.c.charger_id.in_(ids), charger_settings.c.lock_enabled.is_(True)
    )
    return {int(charger_id) for charger_id in (await conn.execute(query)).scalars()}


async def get_user_charger(conn: AsyncConnection, user_id: int, charger_uuid: str) -> RowMapping:
    """The charger with this uuid if one of the user's teams owns it; NotFoundError otherwise (v3 tenancy)."""
    teams = select(team_members.c.team_id).where(team_members.c.user_id == user_id)
    query = select(chargers).where(chargers.c.uuid == charger_uuid.lower(), chargers.c.team_id.in_(teams))
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        raise NotFoundError("charger")
    return row


async def get_charger_row(conn: AsyncConnection, charger_id: int) -> RowMapping | None:
    """The charger by id (any team), or None."""
    return (await conn.execute(select(chargers).where(chargers.c.id == charger_id))).mappings().first()


async def connector_statuses(conn: AsyncConnection, charger_id: int) -> dict[int, str | None]:
    """The charger's connectors (OCPP number, connector 0 left out) and their last reported status."""
    query = select(connectors.c.connector_id, connectors.c.status).where(
        connectors.c.charger_id == charger_id, connectors.c.connector_id > 0
    )
    return {int(row.connector_id): row.status for row in (await conn.execute(query)).all()}


async def has_active_transaction(conn: AsyncConnection, charger_id: int, connector: int | None = None) -> bool:
    """Whether a transaction runs on the charger (on the given connector number, when one is given)."""
    query = select(transactions.c.id).where(transactions.c.charger_id == charger_id, transactions.c.status == "active")
    if connector is not None:
        query = query.where(transactions.c.connector_number == connector)
    return (await conn.execute(query.limit(1))).first() is not None
