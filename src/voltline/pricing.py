"""A site's day-ahead price inputs: the price now, its limit and the smart mode price (R-04, R-66..R-69).

Prices are EUR/MWh here, as stored; the threshold (ct/kWh at the API edge, R-05) is turned into
EUR/MWh with R-63 (x 10). The automatic limit is the unrounded q_k of the site-local day, so the
cheapest share of the day's slots is exactly the share that charges.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from voltline.domain.transactions import rounded
from voltline.smart.prices import (
    SMART_FRACTION,
    PriceSlot,
    ct_per_kwh,
    eur_per_mwh,
    local_day,
    next_slot_start,
    price_at,
    smart_mode_price,
)
from voltline.store.engine import Database
from voltline.store.prices import get_prices

DAY_AHEAD = "day_ahead_pricing"
CENT = Decimal("0.01")


async def site_day_prices(db: Database, site: Any, now: datetime) -> list[PriceSlot]:
    """The slots of the site's zone from the start of its local day to the end of the next one."""
    zone = (site["price_zone"] or "").strip().upper()
    if not zone:
        return []
    start, end = local_day(now, site["timezone"])
    return await get_prices(db, zone, start, end + timedelta(days=1))


def effective_limit(site: Any, slots: list[PriceSlot], now: datetime, fraction: Fraction) -> Decimal | None:
    """R-68/R-69: the manual threshold or the smart mode price, in EUR/MWh; None when there is none."""
    if site["day_ahead_pricing_strategy"] == "manual":
        threshold = site["day_ahead_pricing_threshold"]
        return None if threshold is None else eur_per_mwh(Decimal(threshold))
    return smart_mode_price(slots, now, site["timezone"], fraction)


async def site_price_gate_inputs(
    db: Database, site: Any, now: datetime, *, fraction: Fraction = SMART_FRACTION
) -> tuple[Decimal | None, Decimal | None, datetime | None]:
    """(price now, effective limit, next slot boundary) for a site row, prices in EUR/MWh.

    All None unless the site's mode is `day_ahead_pricing`; the price is None when no slot covers
    `now` (R-67: the gate stays open), the limit None without a threshold or prices for the day.
    """
    if site["smart_charging"] != DAY_AHEAD:
        return None, None, None
    slots = await site_day_prices(db, site, now)
    return price_at(slots, now), effective_limit(site, slots, now, fraction), next_slot_start(slots, now)


async def site_smart_mode_price(
    db: Database, site: Any, now: datetime, *, fraction: Fraction = SMART_FRACTION
) -> Decimal | None:
    """R-04: the smart mode price in ct/kWh rounded half-up to 2 decimals; None outside day-ahead pricing."""
    if site["smart_charging"] != DAY_AHEAD:
        return None
    price = smart_mode_price(await site_day_prices(db, site, now), now, site["timezone"], fraction)
    return None if price is None else rounded(ct_per_kwh(price), CENT)
