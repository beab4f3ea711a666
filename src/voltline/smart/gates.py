"""The site's smart gate: may its connectors charge now, and when to look again (spec §5, §6.4).

* Off-peak (R-50): wall-clock membership in the site's timezone, half-open `[start, end)`,
  crossing midnight when `start > end`; `start == end` is always open (R-50 decision: 24 h,
  fail-open never strands a driver). A missing timezone means UTC.
* Transitions (R-52): the first instant after `now` at which membership changes. Changes happen
  where the local clock shows a bound, and where the clock jumps (DST). A bound inside a
  spring-forward gap therefore takes effect at the gap's end (Amsterdam 2025-03-30, start
  02:30 -> 01:00Z), and a bound inside a fall-back overlap is crossed twice, so a window can be
  left and re-entered (R-52, §5.3). Durations follow: 23:00-07:00 lasts 7 h or 9 h (R-53).
* Prices (R-66, R-67, R-71): open when `price <= limit`; no price or no limit fails open.
  Both numbers must be in the same unit; the caller converts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from voltline.errors import VoltlineError

_BOUND = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_HOUR = timedelta(hours=1)
_SECOND = timedelta(seconds=1)


class GateError(VoltlineError):
    """A smart-charging setting the gate cannot use (mode, bound or timezone)."""


@dataclass(frozen=True, slots=True)
class Gate:
    """The site gate now: open or not, why, and when it may change next (None: only on events)."""

    open: bool
    reason: str
    next_change: datetime | None


def off_peak_open(now: datetime, timezone: str | None, start: str, end: str) -> bool:
    """R-50: is the site's local clock inside the off-peak window `[start, end)` at `now` (naive UTC)?"""
    return _inside(_utc(now), _zone(timezone), _bound(start), _bound(end))


def next_off_peak_change(now: datetime, timezone: str | None, start: str, end: str) -> datetime | None:
    """R-52: the first instant after `now` at which `off_peak_open` changes value (None when start == end)."""
    zone, low, high = _zone(timezone), _bound(start), _bound(end)
    if low == high:
        return None
    moment = _utc(now)
    state = _inside(moment, zone, low, high)
    for candidate in sorted(_candidates(moment, zone, (low, high))):
        if candidate > moment and _inside(candidate, zone, low, high) != state:
            return candidate
    return None


def price_gate_open(price: Decimal | None, limit: Decimal | None) -> bool:
    """R-66/R-67/R-71: open when price <= limit (equality is cheap); no price or no limit -> open."""
    if price is None or limit is None:
        return True
    return price <= limit


def site_gate(
    mode: str,
    now: datetime,
    *,
    timezone: str | None,
    off_peak_start: str,
    off_peak_end: str,
    price_now: Decimal | None,
    limit: Decimal | None,
    next_slot: datetime | None,
) -> Gate:
    """The site's gate for a smart-charging mode: disabled, off_peak (R-50/R-52) or day_ahead_pricing (R-66)."""
    if mode == "disabled":
        return Gate(True, "disabled", None)
    if mode == "off_peak":
        is_open = off_peak_open(now, timezone, off_peak_start, off_peak_end)
        upcoming = next_off_peak_change(now, timezone, off_peak_start, off_peak_end)
        return Gate(is_open, "off_peak_open" if is_open else "off_peak_closed", upcoming)
    if mode == "day_ahead_pricing":
        if price_now is None or limit is None:
            return Gate(True, "prices_unavailable", next_slot)
        is_open = price_gate_open(price_now, limit)
        return Gate(is_open, "price_ok" if is_open else "price_above_limit", next_slot)
    raise GateError(f"Unknown smart charging mode {mode!r}")


def _utc(now: datetime) -> datetime:
    if now.tzinfo is not None:
        return now.astimezone(UTC).replace(tzinfo=None)
    return now


def _zone(name: str | None) -> tzinfo:
    if name is None:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise GateError(f"Unknown timezone {name!r}") from error


def _bound(text: str) -> time:
    match = _BOUND.match(text)
    if match is None:
        raise GateError(f"Invalid off-peak bound {text!r}, expected HH:MM")
    return time(int(match[1]), int(match[2]))


def _local(moment: datetime, zone: tzinfo) -> datetime:
    return moment.replace(tzinfo=UTC).astimezone(zone)


def _inside(moment: datetime, zone: tzinfo, low: time, high: time) -> bool:
    if low == high:
        return True
    clock = _local(moment, zone).time()
    if low < high:
        return low <= clock < high
    return clock >= low or clock < high


def _candidates(moment: datetime, zone: tzinfo, bounds: tuple[time, time]) -> set[datetime]:
    """Every instant near `moment` where membership may change: the bounds' wall times and DST jumps."""
    today = _local(moment, zone).date()
    found = set(_clock_jumps(moment - timedelta(days=1), moment + timedelta(days=3), zone))
    for offset in range(-1, 3):
        day = today + timedelta(days=offset)
        for bound in bounds:
            found.update(_wall_instants(day, bound, zone))
    return found


def _wall_instants(day: date, bound: time, zone: tzinfo) -> set[datetime]:
    # Both folds: a wall time in an overlap happens twice; one in a gap maps to a harmless extra instant.
    return {
        datetime.combine(day, bound, tzinfo=zone).replace(fold=fold).astimezone(UTC).replace(tzinfo=None)
        for fold in (0, 1)
    }


def _clock_jumps(start: datetime, stop: datetime, zone: tzinfo) -> list[datetime]:
    """The UTC instants in [start, stop) at which the zone's UTC offset changes."""
    jumps: list[datetime] = []
    cursor = start.replace(minute=0, second=0, microsecond=0)
    while cursor < stop:
        if _offset(cursor, zone) != _offset(cursor + _HOUR, zone):
            jumps.append(_first_with_offset(cursor, cursor + _HOUR, zone))
        cursor += _HOUR
    return jumps


def _first_with_offset(before: datetime, after: datetime, zone: tzinfo) -> datetime:
    target = _offset(after, zone)
    while after - before > _SECOND:
        middle = before + (after - before) // 2
        if _offset(middle, zone) == target:
            after = middle
        else:
            before = middle
    return after


def _offset(moment: datetime, zone: tzinfo) -> timedelta | None:
    return _local(moment, zone).utcoffset()
