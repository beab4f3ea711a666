"""Reservations of a charger's connector for an id tag (OCPP 1.6 §5.13 ReserveNow, §5.2 CancelReservation).

A row is inserted `pending` before ReserveNow goes out (its integer id is the reservationId the
charger gets), becomes `active` when the charger accepts, and is deleted when it refuses; pending
rows are never listed. An active row ends `used`, `cancelled` or `expired`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.domain.ids import ChargerId, Ref, TeamId
from voltline.errors import NotFoundError
from voltline.store._common import new_uuid, ref_clause
from voltline.store.schema import reservations

# The largest value an INTEGER column holds on PostgreSQL; larger refs name nothing.
MAX_ROW_ID = 2**31 - 1
PENDING, ACTIVE, USED, CANCELLED, EXPIRED = "pending", "active", "used", "cancelled", "expired"


async def insert_pending_reservation(
    conn: AsyncConnection, team_id: TeamId, charger_id: ChargerId, values: dict[str, Any], now: datetime
) -> RowMapping:
    """A new `pending` reservation (connector_number, id_tag, expires_at in `values`)."""
    row = {
        "uuid": new_uuid(),
        "team_id": team_id,
        "charger_id": charger_id,
        "status": PENDING,
        "created_at": now,
        "updated_at": now,
        **values,
    }
    new_id = await conn.scalar(insert(reservations).values(row).returning(reservations.c.id))
    found = await conn.execute(select(reservations).where(reservations.c.id == new_id))
    return found.mappings().one()


async def activate_reservation(conn: AsyncConnection, reservation_id: int, now: datetime) -> RowMapping:
    """Mark a pending reservation `active` (the charger accepted it)."""
    query = update(reservations).where(reservations.c.id == reservation_id, reservations.c.status == PENDING)
    await conn.execute(query.values(status=ACTIVE, updated_at=now))
    found = await conn.execute(select(reservations).where(reservations.c.id == reservation_id))
    return found.mappings().one()


async def delete_pending_reservation(conn: AsyncConnection, reservation_id: int) -> None:
    """Remove a pending reservation the charger refused (nothing of it stays stored)."""
    where = (reservations.c.id == reservation_id, reservations.c.status == PENDING)
    await conn.execute(delete(reservations).where(*where))


async def delete_stale_pending_reservations(conn: AsyncConnection, created_before: datetime) -> None:
    """Remove pending reservations made before `created_before` (their ReserveNow was never settled)."""
    where = (reservations.c.status == PENDING, reservations.c.created_at < created_before)
    await conn.execute(delete(reservations).where(*where))


async def get_reservation(conn: AsyncConnection, team_id: TeamId, charger_id: ChargerId, ref: Ref) -> RowMapping:
    """One listed (not pending) reservation the team made on the charger, by id or uuid; NotFoundError otherwise."""
    if isinstance(ref, int) and not 0 < ref <= MAX_ROW_ID:
        raise NotFoundError("reservation")
    where = (
        reservations.c.team_id == team_id,
        reservations.c.charger_id == charger_id,
        reservations.c.status != PENDING,
        ref_clause(reservations, ref),
    )
    row = (await conn.execute(select(reservations).where(*where))).mappings().first()
    if row is None:
        raise NotFoundError("reservation")
    return row


async def list_reservations(
    conn: AsyncConnection, team_id: TeamId, charger_id: ChargerId, *, offset: int, limit: int
) -> list[RowMapping]:
    """A page of the reservations the team made on the charger (pending ones left out), newest first.

    Scoped by the team stamped on each row (DESIGN data model): a charger moved to another team
    does not carry its reservations along.
    """
    where = (
        reservations.c.team_id == team_id,
        reservations.c.charger_id == charger_id,
        reservations.c.status != PENDING,
    )
    query = select(reservations).where(*where).order_by(reservations.c.id.desc()).offset(offset).limit(limit)
    return list((await conn.execute(query)).mappings().all())


async def end_reservation(conn: AsyncConnection, reservation_id: int, status: str, now: datetime) -> bool:
    """Move an active reservation to `status` (cancelled or expired); False when it was no longer active."""
    query = update(reservations).where(reservations.c.id == reservation_id, reservations.c.status == ACTIVE)
    done = await conn.execute(query.values(status=status, ended_at=now, updated_at=now))
    return bool(done.rowcount)


async def use_reservation(
    conn: AsyncConnection,
    owner: tuple[TeamId | None, ChargerId],
    reservation_id: int,
    transaction_id: int,
    now: datetime,
) -> bool:
    """Mark the reservation `used` by the transaction (OCPP 1.6 §5.13: a start on it ends it).

    `owner` is the charger's team and id: an id that is not one of the reservations its team made
    on this charger, or one already ended, changes nothing.
    """
    team_id, charger_id = owner
    if team_id is None or not 0 < reservation_id <= MAX_ROW_ID:
        return False
    where = (
        reservations.c.id == reservation_id,
        reservations.c.team_id == team_id,
        reservations.c.charger_id == charger_id,
        reservations.c.status.in_((ACTIVE, PENDING)),
    )
    values = {"status": USED, "transaction_id": transaction_id, "ended_at": now, "updated_at": now}
    done = await conn.execute(update(reservations).where(*where).values(values))
    return bool(done.rowcount)


async def expire_reservations(conn: AsyncConnection, now: datetime) -> list[RowMapping]:
    """Mark every active reservation whose time has come `expired`; the rows that were."""
    where = (reservations.c.status == ACTIVE, reservations.c.expires_at <= now)
    due = list((await conn.execute(select(reservations).where(*where))).mappings().all())
    if due:
        ids = [row["id"] for row in due]
        query = update(reservations).where(reservations.c.id.in_(ids), reservations.c.status == ACTIVE)
        await conn.execute(query.values(status=EXPIRED, ended_at=now, updated_at=now))
    return due
