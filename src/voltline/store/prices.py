"""Day-ahead prices per bidding zone: imported slots upserted, time ranges read back.

Re-importing the same slots changes nothing; a republished slot replaces its price; a slot
that a new one overlaps without sharing its start (an hourly price under new quarter-hours)
is removed, so a zone never holds two resolutions for one moment (R-60).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.domain.prices import PriceSlot
from voltline.store._common import utcnow
from voltline.store.engine import Database
from voltline.store.schema import day_ahead_prices as prices
from voltline.store.schema import sites

BATCH = 2000


@dataclass(frozen=True, slots=True)
class UpsertCounts:
    """What an import did: slots new, with a changed price or end, unchanged, and older slots removed."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0

    def __add__(self, other: UpsertCounts) -> UpsertCounts:
        return UpsertCounts(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
            self.removed + other.removed,
        )


def price_text(price: Decimal) -> str:
    """The stored text of a price: plain decimal notation, as published."""
    return format(price, "f")


async def store_prices(
    db: Database,
    zone: str,
    slots: Sequence[PriceSlot],
    *,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> UpsertCounts:
    """Store a zone's slots in batches of short write transactions; `progress` hears each batch's size."""
    ordered = sorted(slots, key=lambda slot: slot.start)
    stamp, total = now or utcnow(), UpsertCounts()
    for first in range(0, len(ordered), BATCH):
        batch = ordered[first : first + BATCH]
        async with db.write() as conn:
            total += await _upsert_batch(conn, zone, batch, stamp)
        if progress is not None:
            progress(len(batch))
    return total


async def _upsert_batch(conn: AsyncConnection, zone: str, batch: list[PriceSlot], now: datetime) -> UpsertCounts:
    existing = await list_prices(conn, zone, batch[0].start, max(slot.end for slot in batch))
    by_start = {slot.start: slot for slot in batch}
    known = {slot.start: slot for slot in existing}
    stale = [slot.start for slot in existing if slot.start not in by_start and _overlaps(batch, slot)]
    changed = [s for s in batch if s.start in known and (known[s.start].end, known[s.start].price) != (s.end, s.price)]
    fresh = [slot for slot in batch if slot.start not in known]
    if stale:
        await conn.execute(delete(prices).where(prices.c.zone == zone, prices.c.slot_start.in_(stale)))
    if changed:
        await conn.execute(_UPDATE, [_bound(zone, slot, now) for slot in changed])
    if fresh:
        await conn.execute(insert(prices), [_row(zone, slot, now) for slot in fresh])
    unchanged = len(batch) - len(changed) - len(fresh)
    return UpsertCounts(len(fresh), len(changed), unchanged, len(stale))


_UPDATE = (
    update(prices)
    .where(prices.c.zone == bindparam("b_zone"), prices.c.slot_start == bindparam("b_start"))
    .values(slot_end=bindparam("b_end"), price=bindparam("b_price"), imported_at=bindparam("b_now"))
)


def _bound(zone: str, slot: PriceSlot, now: datetime) -> dict[str, object]:
    return {"b_zone": zone, "b_start": slot.start, "b_end": slot.end, "b_price": price_text(slot.price), "b_now": now}


def _row(zone: str, slot: PriceSlot, now: datetime) -> dict[str, object]:
    return {
        "zone": zone,
        "slot_start": slot.start,
        "slot_end": slot.end,
        "price": price_text(slot.price),
        "imported_at": now,
    }


def _overlaps(batch: list[PriceSlot], slot: PriceSlot) -> bool:
    """Whether the stored slot overlaps any slot of the (ordered, non-overlapping) batch."""
    index = bisect_left(batch, slot.end, key=lambda s: s.start) - 1
    return index >= 0 and batch[index].end > slot.start


async def list_prices(
    conn: AsyncConnection, zone: str, start: datetime, end: datetime, *, limit: int | None = None
) -> list[PriceSlot]:
    """The zone's slots overlapping `[start, end)`, ordered by start."""
    query = (
        select(prices.c.slot_start, prices.c.slot_end, prices.c.price)
        .where(prices.c.zone == zone, prices.c.slot_start < end, prices.c.slot_end > start)
        .order_by(prices.c.slot_start)
        .limit(limit)
    )
    rows = (await conn.execute(query)).all()
    return [PriceSlot(row.slot_start, row.slot_end, Decimal(row.price)) for row in rows]


async def get_prices(db: Database, zone: str, start: datetime, end: datetime) -> list[PriceSlot]:
    """The zone's slots overlapping `[start, end)`, ordered by start (a few days: an inline read)."""
    async with db.read() as conn:
        return await list_prices(conn, zone, start, end)


async def list_zones_in_use(conn: AsyncConnection) -> list[str]:
    """The price zones set on live sites, upper case, sorted."""
    query = select(sites.c.price_zone).where(and_(sites.c.price_zone.is_not(None), sites.c.deleted_at.is_(None)))
    zones = {str(zone).strip().upper() for zone in (await conn.execute(query.distinct())).scalars()}
    return sorted(zone for zone in zones if zone)


async def get_price_coverage(conn: AsyncConnection, zone: str) -> datetime | None:
    """The end of the zone's last stored slot, if any."""
    latest: datetime | None = await conn.scalar(select(func.max(prices.c.slot_end)).where(prices.c.zone == zone))
    return latest
