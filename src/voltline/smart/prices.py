"""Day-ahead prices: ENTSO-E A44 and CSV parsing, slot look-ups and the smart mode price (spec §6).

A price slot is `[start, end)` in naive UTC with the price in EUR/MWh exactly as published
(R-62). Two file formats are read:

* ENTSO-E `Publication_MarketDocument` of type A44 (R-60..R-62). The document is parsed with
  the standard library's XML parser; `defusedxml` is not a dependency, so any document with a
  DOCTYPE or ENTITY declaration is refused before parsing (that is where entity-expansion
  attacks live; A44 documents never carry one). An `Acknowledgement_MarketDocument` (ENTSO-E's
  "no matching data") raises `PricesNotPublishedError`, which callers treat as "not yet".
* CSV: a header `start,end,price` or `start,price`, then one slot per line; times ISO-8601
  with an offset (`2025-03-12T00:00:00+01:00` or `...Z`), prices in EUR/MWh with a decimal
  point. Slots are 15, 30 or 60 minutes; with `start,price` the length is the smallest step
  between starts. Gaps are allowed; blank lines and lines starting with `#` are skipped.

Consumer prices (R-63 decision): a zone may carry `charges` (energy tax and markup, EUR/kWh) and
`vat` (a fraction); its consumer price is `(spot EUR/kWh + charges) x (1 + vat)`, kept here in
EUR/MWh as `(spot + 1000 x charges) x (1 + vat)`. A zone without either pays neither, and then the
consumer price is the spot price itself. VAT is in [0, 1], so the transformation is increasing and
the k-th cheapest spot slot is also the k-th cheapest consumer slot.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from itertools import pairwise
from zoneinfo import ZoneInfo

from voltline.domain.prices import (
    PriceFormatError,
    PriceSlot,
)
from voltline.errors import VoltlineError

SMART_FRACTION = Fraction(1, 3)
SLOT_LENGTHS = (timedelta(minutes=15), timedelta(minutes=30), timedelta(minutes=60))
MAX_POSITIONS = 50_000  # one period: a leap year of quarter-hours is 35,136
PRICE_DECIMALS = 6
PRICE_LIMIT = Decimal(1_000_000)  # EUR/MWh; the harmonised SDAC cap is in the thousands
# Bidding zones the fetcher can ask ENTSO-E for (EIC codes of the BZN areas).
BIDDING_ZONES = {
    "NL": "10YNL----------L",
    "BE": "10YBE----------2",
    "DE-LU": "10Y1001A1001A82H",
    "AT": "10YAT-APG------L",
    "FR": "10YFR-RTE------C",
    "CH": "10YCH-SWISSGRIDZ",
    "ES": "10YES-REE------0",
    "PT": "10YPT-REN------W",
    "PL": "10YPL-AREA-----S",
    "CZ": "10YCZ-CEPS-----N",
    "DK1": "10YDK-1--------W",
    "DK2": "10YDK-2--------M",
    "FI": "10YFI-1--------U",
    "EE": "10Y1001A1001A39I",
    "LV": "10YLV-1001A00074",
    "LT": "10YLT-1001A0008Q",
    "SE1": "10Y1001A1001A44P",
    "SE2": "10Y1001A1001A45N",
    "SE3": "10Y1001A1001A46L",
    "SE4": "10Y1001A1001A47J",
    "NO1": "10YNO-1--------2",
    "NO2": "10YNO-2--------T",
}
_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_DURATION = re.compile(r"^PT(\d{1,4})([MH])$")


class PricesNotPublishedError(VoltlineError):
    """ENTSO-E answered with an acknowledgement: no prices for the period (yet)."""


@dataclass(frozen=True, slots=True)
class _Period:
    position: int
    resolution: timedelta
    start: datetime
    end: datetime
    slots: tuple[PriceSlot, ...]


# -- zones and formats -----------------------------------------------------------------------------


def detect_format(data: bytes) -> str:
    """`entsoe` for an XML document, `csv` for anything else."""
    return "entsoe" if data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<") else "csv"


def parse_prices(data: bytes, fmt: str = "auto") -> list[PriceSlot]:
    """Parse a price file in the given format (`auto`, `entsoe` or `csv`); slots ordered by start."""
    fmt = detect_format(data) if fmt == "auto" else fmt
    if fmt == "entsoe":
        return parse_entsoe_a44(data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise PriceFormatError(f"the CSV file is not UTF-8 text (byte {error.start})") from None
    return parse_price_csv(text)


def _price(raw: str | None, where: str) -> Decimal:
    try:
        price = Decimal((raw or "").strip())
    except InvalidOperation:
        raise PriceFormatError(f"{where}: price {raw!r} is not a number (use a decimal point)") from None
    if not price.is_finite() or abs(price) > PRICE_LIMIT:
        raise PriceFormatError(f"{where}: price {raw!r} is out of range")
    if int(price.as_tuple().exponent) < -PRICE_DECIMALS:
        raise PriceFormatError(f"{where}: price {raw!r} has more than {PRICE_DECIMALS} decimals")
    return price


def _utc(raw: str, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise PriceFormatError(f"{where}: {raw!r} is not an ISO-8601 time") from None
    if moment.tzinfo is None:
        raise PriceFormatError(f"{where}: {raw!r} has no UTC offset (add Z or +01:00)")
    return moment.astimezone(UTC).replace(tzinfo=None)


# -- ENTSO-E A44 -----------------------------------------------------------------------------------


def parse_entsoe_a44(document: bytes) -> list[PriceSlot]:
    """R-60..R-62: the slots of an A44 document, one series per interval, A03 gaps filled."""
    root = _xml_root(document)
    name = _local(root.tag)
    if name == "Acknowledgement_MarketDocument":
        reason = _text(root, "Reason", "text") or "no data"
        raise PricesNotPublishedError(f"ENTSO-E has no prices for this period yet: {reason}")
    if name != "Publication_MarketDocument":
        raise PriceFormatError(f"not an ENTSO-E price document: <{name}>")
    if (kind := _text(root, "type")) != "A44":
        raise PriceFormatError(f"document type {kind!r} is not A44 (day-ahead prices)")
    periods = [period for series in _children(root, "TimeSeries") for period in _series_periods(series)]
    if not periods:
        raise PriceFormatError("the document holds no price series in EUR/MWh")
    return sorted((slot for period in _chosen(periods) for slot in period.slots), key=lambda s: s.start)


def _xml_root(document: bytes) -> ET.Element:
    if _DECLARATION.search(document):
        raise PriceFormatError("XML with a DOCTYPE or ENTITY declaration is refused")
    try:
        return ET.fromstring(document)
    except ET.ParseError as error:
        raise PriceFormatError(f"not well-formed XML: {error}") from None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element: ET.Element, name: str) -> Iterator[ET.Element]:
    return (child for child in element if _local(child.tag) == name)


def _text(element: ET.Element, *path: str) -> str | None:
    node: ET.Element | None = element
    for name in path:
        node = next(_children(node, name), None) if node is not None else None
    return None if node is None or node.text is None else node.text.strip()


def _series_periods(series: ET.Element) -> list[_Period]:
    if _text(series, "price_Measure_Unit.name") != "MWH" or _text(series, "currency_Unit.name") not in (None, "EUR"):
        return []
    curve = _text(series, "curveType") or "A01"
    if curve not in ("A01", "A03"):
        raise PriceFormatError(f"curve type {curve!r} is not supported (A01 or A03)")
    raw_position = _text(series, "classificationSequence_AttributeInstanceComponent.position") or "1"
    if not raw_position.isdigit():
        raise PriceFormatError(f"classification position {raw_position!r} is not a number")
    return [_period(element, int(raw_position)) for element in _children(series, "Period")]


def _period(element: ET.Element, position: int) -> _Period:
    start = _utc(_text(element, "timeInterval", "start") or "", "Period start")
    end = _utc(_text(element, "timeInterval", "end") or "", "Period end")
    resolution = _resolution(_text(element, "resolution") or "")
    count = (end - start) / resolution
    if end <= start or count != int(count) or count > MAX_POSITIONS:
        raise PriceFormatError(f"period {start:%Y-%m-%dT%H:%MZ} to {end:%Y-%m-%dT%H:%MZ} is not whole slots")
    prices = _filled(_points(element), int(count))
    slots = tuple(PriceSlot(start + i * resolution, start + (i + 1) * resolution, p) for i, p in enumerate(prices))
    return _Period(position, resolution, start, end, slots)


def _resolution(raw: str) -> timedelta:
    match = _DURATION.match(raw)
    if match is None or int(match[1]) == 0:
        raise PriceFormatError(f"resolution {raw!r} is not supported (PT15M, PT30M, PT60M)")
    return timedelta(minutes=int(match[1]) * (60 if match[2] == "H" else 1))


def _points(period: ET.Element) -> dict[int, Decimal]:
    points: dict[int, Decimal] = {}
    for point in _children(period, "Point"):
        raw = _text(point, "position") or ""
        if not raw.isdigit() or int(raw) < 1 or int(raw) in points:
            raise PriceFormatError(f"point position {raw!r} is missing, repeated or not a number")
        points[int(raw)] = _price(_text(point, "price.amount"), f"point {raw}")
    return points


def _filled(points: dict[int, Decimal], count: int) -> list[Decimal]:
    """R-61 (curve A03): an omitted position repeats the last present one; the count comes from the interval."""
    if 1 not in points:
        raise PriceFormatError("the first point (position 1) is missing")
    if max(points) > count:
        raise PriceFormatError(f"point position {max(points)} is past the period's {count} slots")
    prices, last = [], points[1]
    for position in range(1, count + 1):
        last = points.get(position, last)
        prices.append(last)
    return prices


def _chosen(periods: Iterable[_Period]) -> list[_Period]:
    """R-60: one series per interval, the finest resolution first, then the lowest classification position."""
    chosen: list[_Period] = []
    for period in sorted(periods, key=lambda p: (p.resolution, p.position, p.start)):
        if all(period.end <= other.start or other.end <= period.start for other in chosen):
            chosen.append(period)
    return chosen


# -- CSV -------------------------------------------------------------------------------------------


def parse_price_csv(text: str) -> list[PriceSlot]:
    """Slots of a `start,end,price` or `start,price` CSV (EUR/MWh); a bad line raises PriceFormatError naming it."""
    lines = [(n, line.strip()) for n, line in enumerate(text.lstrip("\ufeff").splitlines(), 1)]
    lines = [(n, line) for n, line in lines if line and not line.startswith("#")]
    if not lines:
        raise PriceFormatError("the CSV file is empty")
    header_line, header = lines[0]
    columns = [name.strip().lower() for name in header.split(",")]
    if columns not in (["start", "end", "price"], ["start", "price"]):
        raise PriceFormatError(f"line {header_line}: the header must be start,end,price or start,price")
    rows = sorted((_csv_row(n, line, columns) for n, line in lines[1:]), key=lambda row: row[1])
    if not rows:
        raise PriceFormatError("the CSV file has a header but no prices")
    length = _step(rows) if len(columns) == 2 else None
    slots = [PriceSlot(start, end or start + (length or timedelta()), price) for _, start, end, price in rows]
    _check_sequence(slots, [row[0] for row in rows])
    return slots


def _csv_row(n: int, line: str, columns: list[str]) -> tuple[int, datetime, datetime | None, Decimal]:
    fields = line.split(",")
    if len(fields) != len(columns):
        names = ",".join(columns)
        raise PriceFormatError(f"line {n}: expected {len(columns)} fields ({names}), got {len(fields)}")
    start = _utc(fields[0], f"line {n}")
    end = _utc(fields[1], f"line {n}") if len(columns) == 3 else None
    if end is not None and end - start not in SLOT_LENGTHS:
        raise PriceFormatError(f"line {n}: a slot must last 15, 30 or 60 minutes")
    return n, start, end, _price(fields[-1], f"line {n}")


def _step(rows: list[tuple[int, datetime, datetime | None, Decimal]]) -> timedelta:
    steps = [b[1] - a[1] for a, b in pairwise(rows) if b[1] > a[1]]
    if not steps:
        raise PriceFormatError(f"line {rows[0][0]}: one start alone does not give the slot length; use start,end,price")
    step = min(steps)
    if step not in SLOT_LENGTHS:
        raise PriceFormatError(f"slots are {step} apart; start,price files need 15, 30 or 60 minute slots")
    return step


def _check_sequence(slots: list[PriceSlot], line_numbers: list[int]) -> None:
    for i in range(1, len(slots)):
        if slots[i].start < slots[i - 1].end:
            moment = f"{slots[i].start:%Y-%m-%dT%H:%MZ}"
            raise PriceFormatError(f"line {line_numbers[i]}: the slot starting {moment} overlaps another")


# -- look-ups and the smart mode price -------------------------------------------------------------


def price_at(slots: Sequence[PriceSlot], now: datetime) -> Decimal | None:
    """The price of the slot that contains `now`; None when no slot does (R-67)."""
    return next((slot.price for slot in slots if slot.start <= now < slot.end), None)


def next_slot_start(slots: Sequence[PriceSlot], now: datetime) -> datetime | None:
    """R-70: the next slot boundary after `now` (a start, or the current slot's end before a gap)."""
    moments = [moment for slot in slots for moment in (slot.start, slot.end) if moment > now]
    return min(moments, default=None)


def local_day(now: datetime, timezone: str | None) -> tuple[datetime, datetime]:
    """The site-local day containing `now` as naive UTC `[start, end)` (23, 24 or 25 hours long)."""
    zone = ZoneInfo(timezone or "UTC")
    day = now.replace(tzinfo=UTC).astimezone(zone).date()
    bounds = (datetime.combine(d, time(0), tzinfo=zone) for d in (day, day + timedelta(days=1)))
    start, end = (moment.astimezone(UTC).replace(tzinfo=None) for moment in bounds)
    return start, end


def smart_mode_price(
    slots: Sequence[PriceSlot], now: datetime, timezone: str | None, fraction: Fraction = SMART_FRACTION
) -> Decimal | None:
    """R-69: q_k of the local day's prices sorted ascending, k = ceil(f x N); None without prices (EUR/MWh).

    Slots are weighted by their length, which is k = ceil(f x N) when all are equally long.
    """
    start, end = local_day(now, timezone)
    day = sorted((s for s in slots if start <= s.start < end), key=lambda s: s.price)
    if not day:
        return None
    total = sum(_seconds(s) for s in day)
    wanted, covered = max(fraction * total, Fraction(1)), 0
    for slot in day:
        covered += _seconds(slot)
        if covered >= wanted:
            return slot.price
    return day[-1].price


def _seconds(slot: PriceSlot) -> int:
    return int((slot.end - slot.start).total_seconds())


def smart_fraction(text: str) -> Fraction:
    """The share of the day the smart mode price lets through (`1/3`, `0.25`); 0 < f <= 1."""
    try:
        fraction = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise PriceFormatError(f"{text!r} is not a fraction such as 1/3") from None
    if not 0 < fraction <= 1:
        raise PriceFormatError(f"{text!r} must be above 0 and at most 1")
    return fraction


def ct_per_kwh(eur_per_mwh: Decimal) -> Decimal:
    """R-63: euro cents per kWh from EUR/MWh (÷ 10)."""
    return eur_per_mwh / 10


def eur_per_mwh(ct_per_kwh: Decimal) -> Decimal:
    """R-63: EUR/MWh from euro cents per kWh (x 10)."""
    return ct_per_kwh * 10
