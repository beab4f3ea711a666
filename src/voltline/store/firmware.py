"""Firmware updates of chargers (OCPP 1.6 §5.19, §4.5): one row per request, its states in order."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline import codec
from voltline.domain.firmware import (
    FAILED_STATUSES,
    INSTALLED,
    REQUESTED,
    is_finished,
    read_history,
    shows_new_firmware,
)
from voltline.domain.ids import ChargerId, TeamId
from voltline.domain.timestamps import format_timestamp
from voltline.store._common import new_uuid
from voltline.store.schema import firmware_updates


def _history(entries: list[dict[str, Any]], status: str, at: datetime) -> str:
    return codec.encode_json([*entries, {"status": status, "at": format_timestamp(at)}]).decode()


async def insert_update(
    conn: AsyncConnection, team_id: TeamId, charger_id: ChargerId, values: dict[str, Any], at: datetime
) -> RowMapping:
    """Store a new update in state Requested (location, retrieve_at, retries, retry_interval, version before)."""
    row = {
        **values,
        "uuid": new_uuid(),
        "team_id": team_id,
        "charger_id": charger_id,
        "status": REQUESTED,
        "history": _history([], REQUESTED, at),
        "created_at": at,
        "updated_at": at,
    }
    new_id = await conn.scalar(insert(firmware_updates).values(row).returning(firmware_updates.c.id))
    return await get_update(conn, int(new_id or 0))


async def get_update(conn: AsyncConnection, update_id: int) -> RowMapping:
    """One update by its row id (it exists: the caller made it or found it)."""
    row = (await conn.execute(select(firmware_updates).where(firmware_updates.c.id == update_id))).mappings().first()
    assert row is not None, update_id
    return row


async def delete_update(conn: AsyncConnection, update_id: int) -> None:
    """Remove an update the charger never took (offline, refused, no answer)."""
    await conn.execute(delete(firmware_updates).where(firmware_updates.c.id == update_id))


async def list_updates(
    conn: AsyncConnection, team_id: TeamId, charger_id: ChargerId, *, offset: int, limit: int
) -> list[RowMapping]:
    """A page of the updates the team asked of the charger, newest first."""
    query = (
        select(firmware_updates)
        .where(firmware_updates.c.team_id == team_id, firmware_updates.c.charger_id == charger_id)
        .order_by(firmware_updates.c.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return list((await conn.execute(query)).mappings().all())


async def record_update_status(conn: AsyncConnection, charger_id: ChargerId, status: str, at: datetime) -> None:
    """Move the charger's latest unfinished update to `status` (finished when Installed or failed); else nothing."""
    query = (
        select(firmware_updates)
        .where(firmware_updates.c.charger_id == charger_id, firmware_updates.c.finished_at.is_(None))
        .order_by(firmware_updates.c.id.desc())
        .limit(1)
    )
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        return
    values: dict[str, Any] = {"status": status, "history": _history(read_history(row), status, at), "updated_at": at}
    if is_finished(status):
        values["finished_at"] = at
    await conn.execute(update(firmware_updates).where(firmware_updates.c.id == row["id"]).values(values))


async def record_booted_version(conn: AsyncConnection, charger_id: ChargerId, version: str, at: datetime) -> None:
    """A boot on `version`: the charger's latest update, unless it failed or already has its new version,
    is done (Installed, `firmware_version_after` set, finished) when `version` is not the one it had before."""
    query = (
        select(firmware_updates)
        .where(firmware_updates.c.charger_id == charger_id)
        .order_by(firmware_updates.c.id.desc())
        .limit(1)
    )
    row = (await conn.execute(query)).mappings().first()
    if row is None or row["status"] in FAILED_STATUSES or row["firmware_version_after"] is not None:
        return
    if not shows_new_firmware(row["firmware_version_before"], version):
        return
    values: dict[str, Any] = {"firmware_version_after": version, "updated_at": at, "status": INSTALLED}
    if row["status"] != INSTALLED:
        values["history"] = _history(read_history(row), INSTALLED, at)
    if row["finished_at"] is None:
        values["finished_at"] = at
    await conn.execute(update(firmware_updates).where(firmware_updates.c.id == row["id"]).values(values))
