"""Day-ahead price slots (R-62: in UTC), bidding zones, and consumer charges and VAT per zone (R-63)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from voltline.errors import VoltlineError

ZERO = Decimal(0)
RATEDECIMALS = 6  # charges and VAT
CHARGES_LIMIT = Decimal(1)  # EUR/kWh either way; a larger number is a ct/kWh value typed as euros
ZONE_PATTERN = re.compile(r"^[A-Z]{2}[0-9]?(-[A-Z0-9]{2,6})?$")
DECIMAL = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


@dataclass(frozen=True, slots=True)
class PriceSlot:
    """One delivery period `[start, end)` (naive UTC) and its price in EUR/MWh."""

    start: datetime
    end: datetime
    price: Decimal


class PriceFormatError(VoltlineError):
    """A price file or document cannot be read; the message says where and why."""


def check_zone(zone: str) -> str:
    """The bidding zone in upper case (`NL`, `DE-LU`, `SE3`); PriceFormatError when it is not one."""
    upper = zone.strip().upper()
    if not ZONE_PATTERN.fullmatch(upper):
        raise PriceFormatError(f"{zone!r} is not a price zone (e.g. NL, DE-LU, SE3)")
    return upper


@dataclass(frozen=True, slots=True)
class ConsumerTaxes:
    """R-63: per-zone charges (EUR/kWh) and VAT (a fraction); a zone listed in neither pays neither."""

    charges: Mapping[str, Decimal] = field(default_factory=dict)
    vat: Mapping[str, Decimal] = field(default_factory=dict)

    def consumer_price(self, zone: str, spot_eur_per_mwh: Decimal) -> Decimal:
        """The zone's consumer price in EUR/MWh for a spot price in EUR/MWh."""
        zone = zone.strip().upper()
        return consumer_price(spot_eur_per_mwh, self.charges.get(zone, ZERO), self.vat.get(zone, ZERO))


NO_TAXES = ConsumerTaxes()


def consumer_price(spot_eur_per_mwh: Decimal, charges: Decimal = ZERO, vat: Decimal = ZERO) -> Decimal:
    """R-63: `(spot EUR/kWh + charges) x (1 + vat)` in EUR/MWh; the spot price itself without either."""
    if not charges and not vat:
        return spot_eur_per_mwh
    return (spot_eur_per_mwh + charges * 1000) * (1 + vat)


def parse_zone_charges(text: str) -> dict[str, Decimal]:
    """R-63: `NL=0.1228,DE-LU=0.15` as EUR/kWh per zone, each from -1 to 1 (a negative one is a discount)."""
    return _zone_rates(text, -CHARGES_LIMIT, CHARGES_LIMIT, "EUR/kWh from -1 to 1 (0.1228, not 12.28)")


def parse_zone_vat(text: str) -> dict[str, Decimal]:
    """R-63: `NL=0.21,DE-LU=0.19` as a VAT fraction per zone, each from 0 to 1 (0.21, not 21)."""
    return _zone_rates(text, ZERO, Decimal(1), "a fraction from 0 to 1 (0.21, not 21)")


def _zone_rates(text: str, low: Decimal, high: Decimal, unit: str) -> dict[str, Decimal]:
    rates: dict[str, Decimal] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        zone, sep, raw = item.partition("=")
        if not sep:
            raise PriceFormatError(f"{item!r} is not ZONE=decimal (e.g. NL=0.21)")
        name = check_zone(zone)
        if name in rates:
            raise PriceFormatError(f"zone {name} is listed twice")
        rates[name] = _rate(name, raw.strip(), low, high, unit)
    return rates


def _rate(zone: str, raw: str, low: Decimal, high: Decimal, unit: str) -> Decimal:
    if not DECIMAL.fullmatch(raw):
        raise PriceFormatError(f"{zone}: {raw!r} is not a decimal number (use a decimal point)")
    rate = Decimal(raw)
    if not low <= rate <= high:
        raise PriceFormatError(f"{zone}: {raw} is out of range; use {unit}")
    if int(rate.as_tuple().exponent) < -RATEDECIMALS:
        raise PriceFormatError(f"{zone}: {raw} has more than {RATEDECIMALS} decimals")
    return rate
