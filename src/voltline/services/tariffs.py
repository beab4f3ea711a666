"""Day-ahead tariffs of a bidding zone (spec/volttime-api.md §2.G): the stored slots of a window."""

from __future__ import annotations

from datetime import datetime

from voltline.domain.prices import PriceSlot
from voltline.services.runtime import Runtime
from voltline.store.prices import list_prices


async def list_tariffs(runtime: Runtime, zone: str, start: datetime, end: datetime, *, limit: int) -> list[PriceSlot]:
    """The zone's stored slots that overlap `[start, end)`, oldest first, at most `limit`."""
    async with runtime.db.scan() as conn:  # up to 10,000 rows: keep it off the event loop
        return await list_prices(conn, zone, start, end, limit=limit)
