"""What live usage reads: the latest values of connectors, their previous register, open transactions."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.domain.ids import ChargerId, GroupId, SiteId
from voltline.domain.meter_values import register_reading, unpack_samples
from voltline.domain.power import MEASURANDS, Reading, RegisterSample, Usage, latest_register_time, live_usage
from voltline.store.schema import chargers, connectors, meter_frames, meter_latest, transactions

# Frames looked at, newest first, to find the register reading before the latest one.
REGISTER_LOOKBACK = 10
# A connector in a usage query: (charger id, OCPP connector number).
ConnectorKey = tuple[int, int]


def _reading(row: RowMapping) -> Reading | None:
    try:
        value = Decimal(row["normalised"])
    except (InvalidOperation, TypeError):
        return None
    return Reading(row["measurand"], row["phase"], value, row["timestamp"]) if value.is_finite() else None


async def list_readings(
    conn: AsyncConnection, charger_ids: Collection[int], connector_number: int | None = None
) -> dict[ConnectorKey, list[Reading]]:
    """The latest power-related values per (charger, connector) of the chargers."""
    if not charger_ids:
        return {}
    query = select(meter_latest).where(
        meter_latest.c.charger_id.in_(sorted(charger_ids)), meter_latest.c.measurand.in_(MEASURANDS)
    )
    if connector_number is not None:
        query = query.where(meter_latest.c.connector_number == connector_number)
    found: dict[ConnectorKey, list[Reading]] = {}
    for row in (await conn.execute(query)).mappings():
        reading = _reading(row)
        if reading is not None:
            found.setdefault((row["charger_id"], row["connector_number"]), []).append(reading)
    return found


async def get_previous_register(
    conn: AsyncConnection, charger_id: ChargerId, connector_number: int, before: datetime
) -> RegisterSample | None:
    """The register reading of the connector's newest frame stamped before `before`, if any (R-100 5)."""
    query = (
        select(meter_frames.c.timestamp, meter_frames.c.samples)
        .where(
            meter_frames.c.charger_id == charger_id,
            meter_frames.c.connector_number == connector_number,
            meter_frames.c.timestamp < before,
        )
        .order_by(meter_frames.c.timestamp.desc(), meter_frames.c.id.desc())
        .limit(REGISTER_LOOKBACK)
    )
    for row in await conn.execute(query):
        wh = register_reading(unpack_samples(row.samples))
        if wh is not None:
            return RegisterSample(row.timestamp, wh)
    return None


async def list_open_connectors(conn: AsyncConnection, charger_ids: Collection[int]) -> set[ConnectorKey]:
    """The (charger, connector) pairs with an active transaction."""
    if not charger_ids:
        return set()
    query = select(transactions.c.charger_id, transactions.c.connector_number).where(
        transactions.c.charger_id.in_(sorted(charger_ids)), transactions.c.status == "active"
    )
    return {(row.charger_id, row.connector_number) for row in await conn.execute(query)}


async def list_group_connectors(
    conn: AsyncConnection, site_id: SiteId, group_ids: Collection[GroupId]
) -> Sequence[RowMapping]:
    """The connectors of chargers on the site whose own group, else their charger's, is one of `group_ids`."""
    query = (
        select(connectors.c.charger_id, connectors.c.connector_id, connectors.c.phases, connectors.c.group_id)
        .add_columns(chargers.c.group_id.label("charger_group_id"))
        .join(chargers, chargers.c.id == connectors.c.charger_id)
        .where(chargers.c.site_id == site_id)
        .order_by(connectors.c.charger_id, connectors.c.connector_id)
    )
    wanted = set(group_ids)
    rows = (await conn.execute(query)).mappings().all()
    return [row for row in rows if (row["group_id"] or row["charger_group_id"]) in wanted]


# Above this many connectors the usage maths runs in a thread (STYLE: nothing slow on the event loop).
INLINE_CONNECTORS = 64
# One connector's inputs: its latest values, whether a transaction is open, its phases, its previous register.
Plan = tuple[list[Reading], bool, int, RegisterSample | None]


def _usages(plans: Sequence[Plan], now: datetime) -> list[Usage]:
    return [
        live_usage(own, now=now, open_transaction=busy, phases=phases, previous_register=previous)
        for own, busy, phases, previous in plans
    ]


async def _computed(plans: Sequence[Plan], now: datetime) -> list[Usage]:
    if len(plans) <= INLINE_CONNECTORS:
        return _usages(plans, now)
    return await asyncio.to_thread(_usages, plans, now)


async def read_usages(
    conn: AsyncConnection, wanted: Sequence[tuple[ChargerId, int, int]], now: datetime
) -> list[Usage]:
    """Live usage (R-101/R-102) of each (charger, connector number, phases), in order."""
    charger_ids = {charger_id for charger_id, _, _ in wanted}
    readings = await list_readings(conn, charger_ids)
    open_keys = await list_open_connectors(conn, charger_ids)
    busy_chargers = {charger_id for charger_id, _ in open_keys}
    plans: list[Plan] = []
    for charger_id, number, phases in wanted:
        # Connector 0 is the whole charger: any open transaction keeps its values alive.
        busy = charger_id in busy_chargers if number == 0 else (charger_id, number) in open_keys
        plans.append((readings.get((charger_id, number), []), busy, phases, None))
    usages = await _computed(plans, now)
    # R-100 (5) needs the register reading before the newest: read only where nothing else gave power.
    for index, (charger_id, number, _) in enumerate(wanted):
        register_at = latest_register_time(plans[index][0]) if usages[index].power is None else None
        if register_at is not None:
            own, busy, phases, _ = plans[index]
            previous = await get_previous_register(conn, charger_id, number, register_at)
            usages[index] = _usages([(own, busy, phases, previous)], now)[0]
    return usages
