"""Day-ahead prices, pure: ENTSO-E A44 and CSV parsing, look-ups, the smart mode price (spec §6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from voltline.domain.prices import PriceFormatError, PriceSlot, check_zone
from voltline.smart.prices import (
    PricesNotPublishedError,
    ct_per_kwh,
    detect_format,
    eur_per_mwh,
    local_day,
    next_slot_start,
    parse_entsoe_a44,
    parse_price_csv,
    parse_prices,
    price_at,
    smart_fraction,
    smart_mode_price,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "prices"
HOURLY = [90, 85, 80, 75, 70, 72, 95, 110, 120, 100, 60, 40, 30, 20, 35, 50, 80, 130, 150, 140, 120, 100, 95, 92]
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
NS = "urn:iec62325.351:tc57wg16:451-3:publicationdocument:7:3"


def utc(text: str) -> datetime:
    """A naive UTC moment from an ISO string with an offset."""
    return datetime.fromisoformat(text).astimezone(UTC).replace(tzinfo=None)


def series(
    start: str,
    end: str,
    resolution: str,
    points: dict[int, str],
    *,
    position: int = 1,
    unit: str = "MWH",
    curve: str = "A03",
) -> str:
    """One TimeSeries element with one Period."""
    body = "".join(
        f"<Point><position>{p}</position><price.amount>{v}</price.amount></Point>" for p, v in points.items()
    )
    return (
        "<TimeSeries><currency_Unit.name>EUR</currency_Unit.name>"
        f"<price_Measure_Unit.name>{unit}</price_Measure_Unit.name>"
        "<classificationSequence_AttributeInstanceComponent.position>"
        f"{position}</classificationSequence_AttributeInstanceComponent.position>"
        f"<curveType>{curve}</curveType><Period><timeInterval><start>{start}</start><end>{end}</end></timeInterval>"
        f"<resolution>{resolution}</resolution>{body}</Period></TimeSeries>"
    )


def a44(*series_xml: str, kind: str = "A44") -> bytes:
    """A Publication_MarketDocument around the given series."""
    inner = f"<type>{kind}</type>{''.join(series_xml)}"
    return f'<Publication_MarketDocument xmlns="{NS}">{inner}</Publication_MarketDocument>'.encode()


def hourly_day() -> list[PriceSlot]:
    """The §6.5 hourly vector for 2025-03-12 in Europe/Amsterdam, from the fixture."""
    return parse_entsoe_a44((FIXTURES / "nl_2025-03-12_pt60m.xml").read_bytes())


# -- ENTSO-E A44 -----------------------------------------------------------------------------------


def test_the_hourly_fixture_gives_24_utc_slots_of_the_lowest_classification_position() -> None:
    """spec/smart-charging.md R-60, R-62: position 1 wins over position 2; slots in UTC from the interval start."""
    slots = hourly_day()
    assert [slot.price for slot in slots] == [Decimal(v) for v in HOURLY]
    assert slots[0] == PriceSlot(datetime(2025, 3, 11, 23), datetime(2025, 3, 12, 0), Decimal("90.00"))
    assert slots[-1].end == datetime(2025, 3, 12, 23)
    assert all(b.start == a.end == a.start + timedelta(hours=1) for a, b in pairwise(slots))


def test_a03_compression_fills_omitted_positions_forward() -> None:
    """spec/smart-charging.md §6.5, R-61: {1: 50, 2: 52, 5: 48} over 2 h PT15M -> 8 slots."""
    document = a44(series("2025-03-12T10:00Z", "2025-03-12T12:00Z", "PT15M", {1: "50.0", 2: "52.0", 5: "48.0"}))
    slots = parse_entsoe_a44(document)
    assert [slot.price for slot in slots] == [Decimal(v) for v in (50, 52, 52, 52, 48, 48, 48, 48)]
    assert [slot.start.minute for slot in slots[:4]] == [0, 15, 30, 45]
    assert slots[-1].end == datetime(2025, 3, 12, 12)


@pytest.mark.parametrize(
    ("start", "end", "count"),
    [
        ("2025-03-29T23:00Z", "2025-03-30T22:00Z", 92),  # spring forward in CET
        ("2025-03-11T23:00Z", "2025-03-12T23:00Z", 96),
        ("2025-10-25T22:00Z", "2025-10-26T23:00Z", 100),  # fall back
    ],
)
def test_the_number_of_positions_comes_from_the_interval_on_dst_days(start: str, end: str, count: int) -> None:
    """spec/smart-charging.md R-61, §6.2: 92/96/100 quarter-hours, derived from (end - start) / resolution."""
    slots = parse_entsoe_a44(a44(series(start, end, "PT15M", {1: "10.5", 3: "-2"})))
    assert len(slots) == count
    assert slots[-1].end == utc(end.replace("Z", "+00:00"))
    assert [slot.price for slot in slots[:3]] == [Decimal("10.5"), Decimal("10.5"), Decimal(-2)]
    assert all(slot.price == Decimal(-2) for slot in slots[2:])


def test_the_lowest_classification_position_wins_in_any_order() -> None:
    """spec/smart-charging.md R-60: several TimeSeries over one interval, keep the lowest position."""
    day = ("2025-03-11T23:00Z", "2025-03-12T23:00Z", "PT60M")
    document = a44(
        series(*day, {1: "7"}, position=3), series(*day, {1: "5"}, position=1), series(*day, {1: "6"}, position=2)
    )
    assert {slot.price for slot in parse_entsoe_a44(document)} == {Decimal(5)}


def test_the_finest_resolution_wins_and_a_day_never_mixes_resolutions() -> None:
    """spec/smart-charging.md R-60 with the PT15M fixture (it also carries the hourly series)."""
    slots = parse_entsoe_a44((FIXTURES / "de-lu_2025-10-01_pt15m.xml").read_bytes())
    assert len(slots) == 96
    assert {slot.end - slot.start for slot in slots} == {timedelta(minutes=15)}
    assert (slots[0].start, slots[-1].end) == (datetime(2025, 9, 30, 22), datetime(2025, 10, 1, 22))
    assert [slot.price for slot in slots[:8]] == [Decimal("90.25")] * 4 + [Decimal(f"{p}.25") for p in (85, 86, 87, 88)]
    assert [slot.price for slot in slots[52:56]] == [Decimal("-4.10")] * 4  # positions 54..56 are omitted


def test_series_in_another_unit_are_ignored() -> None:
    """spec/smart-charging.md R-60: keep only MWH series."""
    day = ("2025-03-11T23:00Z", "2025-03-12T23:00Z", "PT60M")
    document = a44(series(*day, {1: "0.05"}, unit="KWH"), series(*day, {1: "50"}, position=2))
    assert {slot.price for slot in parse_entsoe_a44(document)} == {Decimal(50)}
    with pytest.raises(PriceFormatError, match="no price series in EUR/MWh"):
        parse_entsoe_a44(a44(series(*day, {1: "0.05"}, unit="KWH")))


def test_an_acknowledgement_means_not_published_yet_with_its_reason() -> None:
    """spec/smart-charging.md §6.1: an Acknowledgement_MarketDocument is "not published yet", not a crash."""
    with pytest.raises(PricesNotPublishedError, match="No matching data found"):
        parse_entsoe_a44((FIXTURES / "acknowledgement.xml").read_bytes())


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
            b"<Publication_MarketDocument>&lol2;</Publication_MarketDocument>",
            "DOCTYPE or ENTITY declaration is refused",
        ),
        (b"<Publication_MarketDocument><type>A44</type>", "not well-formed XML"),
        (b"<html><body>Service unavailable</body></html>", "not an ENTSO-E price document: <html>"),
        (a44(kind="A65"), "document type 'A65' is not A44"),
        (a44(series("2025-03-12T00:00Z", "2025-03-12T01:00Z", "PT15M", {2: "1"})), "position 1) is missing"),
        (a44(series("2025-03-12T00:00Z", "2025-03-12T01:00Z", "PT15M", {1: "1", 5: "2"})), "past the period's 4"),
        (a44(series("2025-03-12T00:00Z", "2025-03-12T01:10Z", "PT15M", {1: "1"})), "is not whole slots"),
        (a44(series("2025-03-12T00:00Z", "2025-03-12T01:00Z", "P1D", {1: "1"})), "resolution 'P1D'"),
        (a44(series("2025-03-12T00:00Z", "2025-03-12T01:00Z", "PT15M", {1: "abc"})), "point 1: price 'abc'"),
        (a44(series("2025-03-12T00:00Z", "2025-03-12T01:00Z", "PT15M", {1: "NaN"})), "out of range"),
        (a44(series("2025-03-12", "2025-03-12T01:00Z", "PT15M", {1: "1"})), "has no UTC offset"),
        (a44(series("2025-03-12T00:00Z", "2025-03-12T01:00Z", "PT15M", {1: "1"}, curve="A02")), "curve type"),
    ],
)
def test_bad_documents_raise_a_clear_price_format_error(document: bytes, message: str) -> None:
    with pytest.raises(PriceFormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_entsoe_a44(document)


# -- CSV -------------------------------------------------------------------------------------------


def test_the_csv_fixture_matches_the_xml_fixture() -> None:
    """The documented CSV (local times with an offset, EUR/MWh) gives the same UTC slots as the A44 document."""
    assert parse_price_csv((FIXTURES / "nl_2025-03-12.csv").read_text()) == hourly_day()


def test_a_start_price_csv_takes_its_slot_length_from_the_smallest_step_and_allows_gaps() -> None:
    """Quarter-hour slots with a gap: the missing hour stays missing (R-67 then fails open)."""
    text = "start,price\n2025-03-12T10:00Z,1.5\n2025-03-12T10:15Z,-2\n\n2025-03-12T11:30:00+00:00,3\n"
    slots = parse_price_csv(text)
    assert [(s.start.strftime("%H:%M"), s.end.strftime("%H:%M"), s.price) for s in slots] == [
        ("10:00", "10:15", Decimal("1.5")),
        ("10:15", "10:30", Decimal(-2)),
        ("11:30", "11:45", Decimal(3)),
    ]


def test_csv_rows_may_come_in_any_order_and_a_bom_is_ignored() -> None:
    text = "\ufeffSTART, End ,Price\n2025-03-12T01:00Z,2025-03-12T02:00Z,2\n2025-03-12T00:00Z,2025-03-12T01:00Z,1\n"
    assert [slot.price for slot in parse_price_csv(text)] == [Decimal(1), Decimal(2)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the CSV file is empty"),
        ("time,value\n", "line 1: the header must be start,end,price or start,price"),
        ("start,price\n", "has a header but no prices"),
        ("start,price\n2025-03-12T00:00Z,1\n2025-03-12T00:15,2\n", "line 3: '2025-03-12T00:15' has no UTC offset"),
        ("start,price\n2025-03-12T00:00Z,95,37\n", "line 2: expected 2 fields (start,price), got 3"),
        ("start,end,price\n2025-03-12T00:00Z,2025-03-12T01:00Z,abc\n", "line 2: price 'abc' is not a number"),
        ("start,end,price\n2025-03-12T00:00Z,2025-03-12T00:45Z,1\n", "line 2: a slot must last 15, 30 or 60"),
        ("start,end,price\n2025-03-12T00:00Z,2025-03-12T01:00Z,1\nyesterday,2025-03-12T01:00Z,1\n", "line 3"),
        (
            "start,end,price\n2025-03-12T00:00Z,2025-03-12T01:00Z,1\n2025-03-12T00:30Z,2025-03-12T00:45Z,2\n",
            "line 3: the slot starting 2025-03-12T00:30Z overlaps another",
        ),
        ("start,price\n2025-03-12T00:00Z,1\n", "line 2: one start alone does not give the slot length"),
        ("start,price\n2025-03-12T00:00Z,1\n2025-03-12T00:20Z,1\n", "20:00 apart"),
        ("start,price\n2025-03-12T00:00Z,1.1234567\n2025-03-12T00:15Z,1\n", "more than 6 decimals"),
    ],
)
def test_bad_csv_lines_raise_an_error_naming_the_line(text: str, message: str) -> None:
    with pytest.raises(PriceFormatError) as raised:
        parse_price_csv(text)
    assert message in str(raised.value)


def test_the_format_is_detected_from_the_content() -> None:
    xml = (FIXTURES / "nl_2025-03-12_pt60m.xml").read_bytes()
    csv = (FIXTURES / "nl_2025-03-12.csv").read_bytes()
    assert (detect_format(xml), detect_format(b"\xef\xbb\xbf  <x/>"), detect_format(csv)) == ("entsoe", "entsoe", "csv")
    assert parse_prices(xml) == parse_prices(csv) == parse_prices(csv, "csv")
    with pytest.raises(PriceFormatError, match="header must be"):
        parse_prices(xml, "csv")
    with pytest.raises(PriceFormatError, match="not UTF-8"):
        parse_prices(b"start,price\n\xff\xfe", "csv")


# -- smart mode price, gate inputs ---------------------------------------------------------------


def test_the_smart_mode_price_of_the_hourly_day_is_72_eur_per_mwh() -> None:
    """spec/smart-charging.md §6.5, R-69: k = ceil(24/3) = 8, the 8th cheapest hour is 72 EUR/MWh = 7.20 ct/kWh."""
    for local_hour in (0, 12, 23):
        now = datetime(2025, 3, 12, local_hour, 30, tzinfo=AMSTERDAM).astimezone(UTC).replace(tzinfo=None)
        price = smart_mode_price(hourly_day(), now, "Europe/Amsterdam")
        assert price == Decimal(72)
        assert ct_per_kwh(price) == Decimal("7.2")


def test_charging_is_allowed_in_local_hours_4_5_and_10_to_15() -> None:
    """spec/smart-charging.md §6.5, R-66: price <= the smart mode price in the hours priced 72, 70, 60 ... 50."""
    slots = hourly_day()
    limit = smart_mode_price(slots, datetime(2025, 3, 12, 12), "Europe/Amsterdam")
    assert limit is not None
    allowed = []
    for hour in range(24):
        moment = datetime(2025, 3, 12, hour, 10, tzinfo=AMSTERDAM).astimezone(UTC).replace(tzinfo=None)
        price = price_at(slots, moment)
        assert price is not None
        if price <= limit:
            allowed.append(hour)
    assert allowed == [4, 5, 10, 11, 12, 13, 14, 15]


def test_the_smart_mode_price_uses_the_site_local_day_and_is_none_without_prices() -> None:
    """spec/smart-charging.md R-69: the site-local day containing now; no prices for it -> None (R-67)."""
    slots = hourly_day()
    assert smart_mode_price(slots, datetime(2025, 3, 12, 23, 30), "Europe/Amsterdam") is None  # local 13 March
    assert smart_mode_price(slots, datetime(2025, 3, 11, 22, 59), "Europe/Amsterdam") is None
    assert smart_mode_price([], datetime(2025, 3, 12, 12), "Europe/Amsterdam") is None
    # In UTC the day 12 March holds 23 of the hours (the first is 11 March 23:00Z): k = ceil(23/3) = 8.
    utc_day = sorted(HOURLY[1:])
    assert smart_mode_price(slots, datetime(2025, 3, 12, 12), None) == Decimal(utc_day[7])


@pytest.mark.parametrize(
    ("start", "end", "count"),
    [("2025-03-29T23:00Z", "2025-03-30T22:00Z", 92), ("2025-10-25T22:00Z", "2025-10-26T23:00Z", 100)],
)
def test_the_smart_mode_price_on_dst_days_takes_ceil_of_a_third_of_the_slots(start: str, end: str, count: int) -> None:
    """spec/smart-charging.md R-69: N = 92 or 100 on DST days; prices 1..N give q_k = k = ceil(N/3)."""
    points = {position: str(count + 1 - position) for position in range(1, count + 1)}  # descending: sorting matters
    slots = parse_entsoe_a44(a44(series(start, end, "PT15M", points)))
    inside = utc(start.replace("Z", "+00:00")) + timedelta(hours=5)
    assert smart_mode_price(slots, inside, "Europe/Amsterdam") == Decimal(-(-count // 3))


def test_the_fraction_is_configurable() -> None:
    """spec/smart-charging.md R-69: keep f configurable; f = 1/4 takes the 6th cheapest of 24."""
    now = datetime(2025, 3, 12, 12)
    assert smart_mode_price(hourly_day(), now, "Europe/Amsterdam", Fraction(1, 4)) == Decimal(60)
    assert smart_mode_price(hourly_day(), now, "Europe/Amsterdam", Fraction(1)) == Decimal(150)
    assert smart_fraction(" 0.25 ") == Fraction(1, 4) and smart_fraction("1/3") == Fraction(1, 3)
    for bad in ("0", "1.5", "x", "1/0"):
        with pytest.raises(PriceFormatError):
            smart_fraction(bad)


def test_price_at_and_next_slot_start_follow_half_open_slots_and_gaps() -> None:
    """spec/smart-charging.md R-67, R-70: the slot holding now; the next boundary to look again."""
    a = PriceSlot(datetime(2025, 3, 12, 10), datetime(2025, 3, 12, 10, 15), Decimal(1))
    b = PriceSlot(datetime(2025, 3, 12, 10, 15), datetime(2025, 3, 12, 10, 30), Decimal(2))
    c = PriceSlot(datetime(2025, 3, 12, 11), datetime(2025, 3, 12, 11, 15), Decimal(3))
    slots = [a, b, c]
    assert price_at(slots, datetime(2025, 3, 12, 10)) == 1
    assert price_at(slots, datetime(2025, 3, 12, 10, 15)) == 2
    assert price_at(slots, datetime(2025, 3, 12, 10, 30)) is None  # the gap: fail open
    assert price_at(slots, datetime(2025, 3, 12, 9)) is None
    assert next_slot_start(slots, datetime(2025, 3, 12, 9)) == a.start
    assert next_slot_start(slots, datetime(2025, 3, 12, 10, 5)) == b.start
    assert next_slot_start(slots, datetime(2025, 3, 12, 10, 20)) == b.end  # the price ends before c starts
    assert next_slot_start(slots, datetime(2025, 3, 12, 10, 45)) == c.start
    assert next_slot_start(slots, datetime(2025, 3, 12, 11, 15)) is None


def test_unit_conversions_and_the_manual_threshold_boundary() -> None:
    """spec/smart-charging.md R-63 and §6.5: threshold 8 ct/kWh allows 80.00 EUR/MWh, not 80.01."""
    limit = eur_per_mwh(Decimal(8))
    assert limit == Decimal(80)
    assert Decimal("80.00") <= limit and not Decimal("80.01") <= limit
    assert ct_per_kwh(Decimal("150.6")) == Decimal("15.06")
    assert ct_per_kwh(Decimal("-12.34")) == Decimal("-1.234")


def test_local_day_is_23_24_or_25_hours() -> None:
    assert local_day(datetime(2025, 3, 30, 12), "Europe/Amsterdam") == (
        datetime(2025, 3, 29, 23),
        datetime(2025, 3, 30, 22),
    )
    assert local_day(datetime(2025, 10, 26, 12), "Europe/Amsterdam") == (
        datetime(2025, 10, 25, 22),
        datetime(2025, 10, 26, 23),
    )
    assert local_day(datetime(2025, 3, 12, 23, 30), None) == (datetime(2025, 3, 12), datetime(2025, 3, 13))


@pytest.mark.parametrize(("raw", "zone"), [("NL", "NL"), ("de-lu", "DE-LU"), (" SE3 ", "SE3"), ("IT-NORD", "IT-NORD")])
def test_zones_are_checked_and_upper_cased(raw: str, zone: str) -> None:
    assert check_zone(raw) == zone


@pytest.mark.parametrize("raw", ["", "N", "Netherlands", "NL_", "DE-", "10YNL----------L", "NL;DROP"])
def test_bad_zones_are_refused(raw: str) -> None:
    with pytest.raises(PriceFormatError, match="is not a price zone"):
        check_zone(raw)
