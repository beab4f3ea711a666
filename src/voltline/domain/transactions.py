"""A transaction's energy and money: kWh and costs from integer Wh, as Decimal, rounded half-up.

spec/volttime-api.md C11: `total_kwh` = round_half_up((meter_stop - meter_start) / 1000, 2),
`"0.00"` when a reading is missing; while a transaction runs, the register (the highest
Energy.Active.Import.Register reading so far) stands in for meter_stop. Prices are those copied
from the site when the transaction started (DESIGN: data model): `kwh_cost` and `start_cost`
with 4 decimals, `total_kwh_cost` = exact kWh x kwh_cost with 4 decimals (from the Wh, never
from the rounded kWh), `total_cost` = start_cost + total_kwh_cost with 2 decimals.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation

# Wide enough for any BigInteger Wh times any stored price, so quantize never overflows.
_CONTEXT = Context(prec=80, rounding=ROUND_HALF_UP)
WH_PER_KWH = Decimal(1000)
KWH_PLACES = Decimal("0.01")
PRICE_PLACES = Decimal("0.0001")
TOTAL_PLACES = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class TransactionCosts:
    """The energy and money fields of a transaction object, as the API's decimal strings."""

    total_kwh: str
    start_cost: str
    kwh_cost: str
    total_kwh_cost: str
    total_cost: str


def energy_wh(meter_start: int | None, meter_stop: int | None, register_wh: int | None, *, active: bool) -> int | None:
    """Wh charged: meter_stop - meter_start, or register - meter_start while active; None when unknown."""
    end = meter_stop if meter_stop is not None else (register_wh if active else None)
    if meter_start is None or end is None:
        return None
    return end - meter_start


def rounded(number: Decimal, places: Decimal) -> Decimal:
    """Round half-up (away from zero on a tie) to the given places; never a negative zero."""
    result = number.quantize(places, rounding=ROUND_HALF_UP, context=_CONTEXT)
    return result.copy_abs() if result.is_zero() else result


def price(text: str | None) -> Decimal:
    """A stored price (a decimal string, or None for none) as a Decimal; unreadable text counts as zero."""
    if text is None:
        return Decimal(0)
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        return Decimal(0)
    return number if number.is_finite() else Decimal(0)


def total_kwh(wh: int | None) -> str:
    """The kWh of `wh` with 2 decimals, half-up ("0.00" when unknown): 9145 Wh -> "9.15"."""
    kwh = Decimal(0) if wh is None else _CONTEXT.divide(Decimal(wh), WH_PER_KWH)
    return str(rounded(kwh, KWH_PLACES))


def transaction_costs(wh: int | None, kwh_price: str | None, start_price: str | None) -> TransactionCosts:
    """Every energy and money field for `wh` Wh at the copied kWh price and start cost."""
    kwh_cost = rounded(price(kwh_price), PRICE_PLACES)
    start_cost = rounded(price(start_price), PRICE_PLACES)
    exact_kwh = Decimal(0) if wh is None else _CONTEXT.divide(Decimal(wh), WH_PER_KWH)
    energy_cost = rounded(_CONTEXT.multiply(exact_kwh, kwh_cost), PRICE_PLACES)
    return TransactionCosts(
        total_kwh=total_kwh(wh),
        start_cost=str(start_cost),
        kwh_cost=str(kwh_cost),
        total_kwh_cost=str(energy_cost),
        total_cost=str(rounded(_CONTEXT.add(start_cost, energy_cost), TOTAL_PLACES)),
    )
