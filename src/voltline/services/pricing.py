"""A site's day-ahead price inputs: the price now, its limit and the smart mode price (R-04, R-66..R-69).

Prices are EUR/MWh here; the threshold (ct/kWh at the API edge, R-05) is turned into EUR/MWh
with R-63 (x 10). The gate and the smart mode price use the consumer price of the site's zone
(R-63 decision: `(spot EUR/kWh + charges) x (1 + vat)`, the spot price itself when the zone has
neither), so a manual threshold is compared with what the consumer pays. The automatic limit is
the consumer price of the unrounded q_k of the site-local day; the transformation is increasing,
so the cheapest share of the day's slots is exactly the share that charges.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from voltline.domain.prices import NO_TAXES, ConsumerTaxes, PriceSlot
from voltline.domain.transactions import rounded
from voltline.smart.gates import Gate, site_gate
from voltline.smart.prices import (
    SMART_FRACTION,
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


def site_zone(site: Any) -> str:
    """The site's price zone in upper case; empty when it has none."""
    return str(site["price_zone"] or "").strip().upper()


async def site_day_prices(db: Database, site: Any, now: datetime) -> list[PriceSlot]:
    """The slots of the site's zone from the start of its local day to the end of the next one."""
    zone = site_zone(site)
    if not zone:
        return []
    start, end = local_day(now, site["timezone"])
    return await get_prices(db, zone, start, end + timedelta(days=1))


def consumer(taxes: ConsumerTaxes, site: Any, spot: Decimal | None) -> Decimal | None:
    """R-63: the consumer price in the site's zone of a spot price (EUR/MWh); None stays None."""
    return None if spot is None else taxes.consumer_price(site_zone(site), spot)


def effective_limit(
    site: Any, slots: list[PriceSlot], now: datetime, fraction: Fraction, taxes: ConsumerTaxes = NO_TAXES
) -> Decimal | None:
    """R-68/R-69: the manual threshold or the consumer smart mode price, in EUR/MWh; None when there is none."""
    if site["day_ahead_pricing_strategy"] == "manual":
        threshold = site["day_ahead_pricing_threshold"]
        return None if threshold is None else eur_per_mwh(Decimal(threshold))
    return consumer(taxes, site, smart_mode_price(slots, now, site["timezone"], fraction))


async def site_price_gate_inputs(
    db: Database, site: Any, now: datetime, *, fraction: Fraction = SMART_FRACTION, taxes: ConsumerTaxes = NO_TAXES
) -> tuple[Decimal | None, Decimal | None, datetime | None]:
    """(consumer price now, effective limit, next slot boundary) for a site row, prices in EUR/MWh.

    All None unless the site's mode is `day_ahead_pricing`; the price is None when no slot covers
    `now` (R-67: the gate stays open), the limit None without a threshold or prices for the day.
    """
    if site["smart_charging"] != DAY_AHEAD:
        return None, None, None
    slots = await site_day_prices(db, site, now)
    price = consumer(taxes, site, price_at(slots, now))
    return price, effective_limit(site, slots, now, fraction, taxes), next_slot_start(slots, now)


async def site_gate_now(
    db: Database, site: Any, now: datetime, *, fraction: Fraction = SMART_FRACTION, taxes: ConsumerTaxes = NO_TAXES
) -> tuple[Decimal | None, Decimal | None, Gate]:
    """(consumer price now, effective limit, gate) of a site row: off-peak window (R-50) or price (R-66)."""
    price, limit, next_slot = await site_price_gate_inputs(db, site, now, fraction=fraction, taxes=taxes)
    gate = site_gate(
        site["smart_charging"],
        now,
        timezone=site["timezone"],
        off_peak_start=site["off_peak_start"],
        off_peak_end=site["off_peak_end"],
        price_now=price,
        limit=limit,
        next_slot=next_slot,
    )
    return price, limit, gate


async def site_smart_mode_price(
    db: Database, site: Any, now: datetime, *, fraction: Fraction = SMART_FRACTION, taxes: ConsumerTaxes = NO_TAXES
) -> Decimal | None:
    """R-04/R-63: the consumer smart mode price in ct/kWh rounded half-up to 2 decimals; None outside day-ahead."""
    if site["smart_charging"] != DAY_AHEAD:
        return None
    spot = smart_mode_price(await site_day_prices(db, site, now), now, site["timezone"], fraction)
    price = consumer(taxes, site, spot)
    return None if price is None else rounded(ct_per_kwh(price), CENT)
