"""Meters of a team (CT meters on a grid connection) and their latest reading."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.domain.ids import ChargerId, MeterId, Ref, TeamId
from voltline.domain.meter_values import decimal_text
from voltline.domain.power import PHASES, MeterReading
from voltline.errors import NotFoundError
from voltline.store._common import new_uuid, ref_clause, stamped, utcnow
from voltline.store.chargers import MAX_ROW_ID
from voltline.store.schema import chargers, meter_readings, meters

_POWER_COLUMNS = {"L1": "power_l1", "L2": "power_l2", "L3": "power_l3"}


async def get_meter(conn: AsyncConnection, team_id: TeamId, ref: Ref) -> RowMapping:
    """One meter of the team by id or uuid; NotFoundError otherwise."""
    if isinstance(ref, int) and not 0 < ref <= MAX_ROW_ID:
        raise NotFoundError("meter")
    query = select(meters).where(meters.c.team_id == team_id, ref_clause(meters, ref))
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        raise NotFoundError("meter")
    return row


async def list_meters(conn: AsyncConnection, team_id: TeamId, *, offset: int, limit: int) -> list[RowMapping]:
    """A page of the team's meters, oldest first."""
    query = select(meters).where(meters.c.team_id == team_id).order_by(meters.c.id).offset(offset).limit(limit)
    return list((await conn.execute(query)).mappings().all())


async def create_meter(conn: AsyncConnection, team_id: TeamId, values: Mapping[str, Any]) -> RowMapping:
    """Insert a meter of the team."""
    row = stamped({"uuid": new_uuid(), "team_id": team_id, **values}, created=True)
    meter_id = await conn.scalar(insert(meters).values(row).returning(meters.c.id))
    return await get_meter(conn, team_id, int(meter_id or 0))


async def team_has_charger(conn: AsyncConnection, team_id: TeamId, charger_id: int) -> bool:
    """True when the charger exists and belongs to the team."""
    if not 0 < charger_id <= MAX_ROW_ID:
        return False
    query = select(chargers.c.id).where(chargers.c.id == charger_id, chargers.c.team_id == team_id)
    return await conn.scalar(query) is not None


async def list_team_charger_ids(conn: AsyncConnection, team_id: TeamId, charger_ids: Collection[int]) -> set[ChargerId]:
    """The chargers among `charger_ids` that belong to the team now (a moved charger feeds no meter)."""
    if not charger_ids:
        return set()
    query = select(chargers.c.id).where(chargers.c.id.in_(sorted(charger_ids)), chargers.c.team_id == team_id)
    return {ChargerId(row.id) for row in await conn.execute(query)}


def _text(value: Decimal | None) -> str | None:
    return None if value is None else decimal_text(value)


def _decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


async def save_reading(conn: AsyncConnection, meter_id: MeterId, reading: MeterReading) -> None:
    """Keep the reading unless the stored one is newer (a later-or-equal reading replaces it)."""
    values = {
        **{phase.lower(): decimal_text(reading.currents.get(phase, Decimal(0))) for phase in PHASES},
        "power": _text(reading.power),
        **{column: _text(reading.phase_power.get(phase)) for phase, column in _POWER_COLUMNS.items()},
        "reading_at": reading.at,
        "received_at": utcnow(),
    }
    table = meter_readings
    held = await conn.scalar(select(table.c.reading_at).where(table.c.meter_id == meter_id))
    if held is None:
        await conn.execute(insert(table).values(meter_id=meter_id, **values))
    elif held <= reading.at:
        await conn.execute(update(table).where(table.c.meter_id == meter_id).values(values))


def _meter_reading(row: RowMapping) -> MeterReading:
    return MeterReading(
        at=row["reading_at"],
        currents={phase: Decimal(row[phase.lower()]) for phase in PHASES},
        power=_decimal(row["power"]),
        phase_power={phase: _decimal(row[column]) for phase, column in _POWER_COLUMNS.items()},
    )


async def list_readings(conn: AsyncConnection, meter_ids: Collection[int]) -> dict[MeterId, MeterReading]:
    """The posted reading of each meter that has one."""
    if not meter_ids:
        return {}
    query = select(meter_readings).where(meter_readings.c.meter_id.in_(sorted(meter_ids)))
    return {MeterId(row["meter_id"]): _meter_reading(row) for row in (await conn.execute(query)).mappings()}
