"""Consumer prices: spec/smart-charging.md R-63's decision `(spot EUR/kWh + charges) x (1 + vat)`, in EUR/MWh."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voltline.domain.prices import (
    NO_TAXES,
    ConsumerTaxes,
    PriceFormatError,
    PriceSlot,
    consumer_price,
    parse_zone_charges,
    parse_zone_vat,
)
from voltline.smart.gates import price_gate_open
from voltline.smart.prices import ct_per_kwh, eur_per_mwh, smart_mode_price

HOURLY = [90, 85, 80, 75, 70, 72, 95, 110, 120, 100, 60, 40, 30, 20, 35, 50, 80, 130, 150, 140, 120, 100, 95, 92]
NL = ConsumerTaxes(charges={"NL": Decimal("0.1228")}, vat={"NL": Decimal("0.21")})


@pytest.mark.parametrize(
    ("spot", "charges", "vat", "expected"),
    [
        # (0.1 + 0.1228) x 1.21 = 0.269588 EUR/kWh
        ("100", "0.1228", "0.21", "269.588"),
        # A negative spot price: (-0.05 + 0.1228) x 1.21 = 0.088088 EUR/kWh
        ("-50", "0.1228", "0.21", "88.088"),
        # VAT alone scales a negative price too: -0.05 x 1.21 (evcc's formula)
        ("-50", "0", "0.21", "-60.5"),
        # Charges alone: 0.072 + 0.1 = 0.172 EUR/kWh
        ("72", "0.1", "0", "172"),
        # A negative charge (a supplier's discount per kWh): (0.2 - 0.02) x 1.19
        ("200", "-0.02", "0.19", "214.2"),
        # The §6.5 smart mode price with NL-like taxes: (0.072 + 0.1228) x 1.21 = 0.235708
        ("72", "0.1228", "0.21", "235.708"),
    ],
)
def test_consumer_price_adds_charges_then_vat_in_eur_per_mwh(spot: str, charges: str, vat: str, expected: str) -> None:
    """spec/smart-charging.md R-63: (spot EUR/kWh + charges) x (1 + VAT), kept in EUR/MWh (hand-computed)."""
    assert consumer_price(Decimal(spot), Decimal(charges), Decimal(vat)) == Decimal(expected)


def test_without_charges_or_vat_the_consumer_price_is_the_spot_price_itself() -> None:
    """spec/smart-charging.md R-63: both default to 0, and the price is then unchanged, digit for digit."""
    spot = Decimal("72.150")
    assert str(consumer_price(spot)) == "72.150"
    assert str(consumer_price(spot, Decimal("0.0"), Decimal("0.00"))) == "72.150"
    assert NO_TAXES.consumer_price("NL", spot) is spot


def test_taxes_are_looked_up_by_zone_case_insensitively_and_an_unlisted_zone_pays_none() -> None:
    """spec/smart-charging.md R-63: a per-zone configuration; a zone missing from it means 0."""
    assert NL.consumer_price("nl", Decimal(100)) == Decimal("269.588")
    assert NL.consumer_price(" NL ", Decimal(100)) == Decimal("269.588")
    assert NL.consumer_price("DE-LU", Decimal(100)) == Decimal(100)


@given(
    st.decimals(min_value=-500, max_value=4000, places=2),
    st.decimals(min_value=-500, max_value=4000, places=2),
    st.decimals(min_value=-1, max_value=1, places=4),
    st.decimals(min_value=0, max_value=1, places=2),
)
def test_the_transformation_keeps_the_order_of_prices(a: Decimal, b: Decimal, charges: Decimal, vat: Decimal) -> None:
    """spec/smart-charging.md R-63/R-69: increasing, so q_k of spot prices is q_k of consumer prices."""
    low, high = sorted((a, b))
    assert consumer_price(low, charges, vat) <= consumer_price(high, charges, vat)
    if low < high:
        assert consumer_price(low, charges, vat) < consumer_price(high, charges, vat)


def test_the_smart_mode_price_of_the_example_day_as_a_consumer_price() -> None:
    """spec/smart-charging.md §6.5 + R-63: q_8 = 72 EUR/MWh becomes 235.708 EUR/MWh, 23.5708 ct/kWh, in NL."""
    start, hour = datetime(2025, 3, 11, 23), timedelta(hours=1)
    slots = [PriceSlot(start + i * hour, start + (i + 1) * hour, Decimal(p)) for i, p in enumerate(HOURLY)]
    spot = smart_mode_price(slots, datetime(2025, 3, 12, 12), "Europe/Amsterdam")
    assert spot == Decimal(72)
    assert ct_per_kwh(NL.consumer_price("NL", spot)) == Decimal("23.5708")
    allowed = [p for p in HOURLY if NL.consumer_price("NL", Decimal(p)) <= NL.consumer_price("NL", spot)]
    assert sorted(allowed) == [20, 30, 35, 40, 50, 60, 70, 72]  # the same 8 hours as with spot prices


def test_a_manual_threshold_is_compared_with_the_consumer_price_and_equality_is_cheap() -> None:
    """spec/smart-charging.md R-63, R-66, R-68: threshold 10 ct/kWh; spot 80 with 25 % VAT is exactly 100 EUR/MWh."""
    limit = eur_per_mwh(Decimal(10))
    assert price_gate_open(consumer_price(Decimal("80.00"), vat=Decimal("0.25")), limit)
    assert not price_gate_open(consumer_price(Decimal("80.01"), vat=Decimal("0.25")), limit)
    # Spot 20 EUR/MWh (2 ct/kWh) is under a threshold of 8 ct/kWh; the NL consumer price 17.2788 ct/kWh is not.
    assert price_gate_open(Decimal(20), eur_per_mwh(Decimal(8)))
    assert not price_gate_open(NL.consumer_price("NL", Decimal(20)), eur_per_mwh(Decimal(8)))


def test_zone_lists_parse_to_upper_case_zones_with_decimal_rates() -> None:
    """spec/smart-charging.md R-63: `ZONE=decimal` pairs separated by commas; blanks and a trailing comma are fine."""
    assert parse_zone_charges("nl=0.1228, DE-LU = .15,") == {"NL": Decimal("0.1228"), "DE-LU": Decimal("0.15")}
    assert parse_zone_charges("SE3=-0.02") == {"SE3": Decimal("-0.02")}
    assert parse_zone_vat("NL=0.21,DE-LU=0.19,FR=0,DK1=1") == {
        "NL": Decimal("0.21"),
        "DE-LU": Decimal("0.19"),
        "FR": Decimal(0),
        "DK1": Decimal(1),
    }
    assert parse_zone_charges("") == {} and parse_zone_vat(" ") == {}


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (parse_zone_charges, "NL", "'NL' is not ZONE=decimal"),
        (parse_zone_charges, "NL:0.1", "'NL:0.1' is not ZONE=decimal"),
        (parse_zone_charges, "=0.1", "'' is not a price zone"),
        (parse_zone_charges, "Netherlands=0.1", "'Netherlands' is not a price zone"),
        (parse_zone_charges, "NL=0,1", "'1' is not ZONE=decimal"),
        (parse_zone_charges, "NL=abc", "NL: 'abc' is not a decimal number"),
        (parse_zone_charges, "NL=", "NL: '' is not a decimal number"),
        (parse_zone_charges, "NL=NaN", "NL: 'NaN' is not a decimal number"),
        (parse_zone_charges, "NL=Infinity", "NL: 'Infinity' is not a decimal number"),
        (parse_zone_charges, "NL=1e-3", "NL: '1e-3' is not a decimal number"),
        (parse_zone_charges, "NL=12.28", r"NL: 12.28 is out of range; use EUR/kWh from -1 to 1 \(0.1228, not 12.28\)"),
        (parse_zone_charges, "NL=-1.5", "NL: -1.5 is out of range"),
        (parse_zone_charges, "NL=0.1234567", "NL: 0.1234567 has more than 6 decimals"),
        (parse_zone_charges, "NL=0.1,nl=0.2", "zone NL is listed twice"),
        (parse_zone_vat, "NL=21", r"NL: 21 is out of range; use a fraction from 0 to 1 \(0.21, not 21\)"),
        (parse_zone_vat, "NL=-0.01", "NL: -0.01 is out of range"),
        (parse_zone_vat, "NL=1.01", "NL: 1.01 is out of range"),
        (parse_zone_vat, "NL=21%", "NL: '21%' is not a decimal number"),
    ],
)
def test_malformed_zone_lists_name_the_entry_and_the_reason(
    parse: Callable[[str], dict[str, Decimal]], text: str, message: str
) -> None:
    """spec/smart-charging.md R-63: a bad configuration is refused with a message that says what is wrong."""
    with pytest.raises(PriceFormatError, match=message):
        parse(text)
