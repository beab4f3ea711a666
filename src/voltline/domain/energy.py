"""Energy per period from register readings (spec/smart-charging.md §8.3, R-95..R-98).

A connector's `Energy.Active.Import.Register` readings (R-91/R-92 pick one per frame, in
whole Wh) are put in time order, one per timestamp (R-95: Transaction.End > Sample.Periodic
> Sample.Clock > others, then the later arrival). Walking them from a baseline gives
intervals `[t_{i-1}, t_i]` with the energy `d_i = E_i - E_{i-1}` (R-96): a negative delta is
a reset that contributes 0 and moves the baseline (flagged when it drops by more than 1 Wh);
a reading whose delta implies more than 1.5 x the connector's maximum power is an outlier,
skipped, and the next delta starts again from the previous good reading (R-97).

An interval's energy is spread over 15-minute UTC buckets in proportion to time overlap
(R-98), in whole Wh by cumulative half-up rounding: bucket k gets
`round(d x overlap_0..k / dt) - round(d x overlap_0..k-1 / dt)`, so the shares always add up
to exactly `d` and the same interval always gives the same shares. An interval longer than
`MAX_SPREAD` (a charger clock that was wrong, a reading stamped in another century) is spread
over its last `MAX_SPREAD` only: R-98 has no bound, and years of 15-minute buckets would tie up
the writer for minutes and write millions of rows for one reading. Every time zone in use
has an offset that is a multiple of 15 minutes, so a local hour or day (23 or 25 hours on a
DST day) is a union of whole 15-minute buckets; `local_buckets` lays those out.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Literal

from voltline.domain.meter_values import EAIR, Sample, context_priority, register_reading, register_wh

BUCKET = timedelta(minutes=15)
MAX_SPREAD = timedelta(days=92)  # a quarter: 8,832 buckets at most per interval
# R-97 needs the connector's maximum power; without a rating we assume a high-power DC charger,
# so only unit mix-ups (x1000 jumps) are caught, never real fast charging.
DEFAULT_MAX_POWER_W = 350_000
NOMINAL_VOLTAGE = 230
OUTLIER_FACTOR = Decimal("1.5")
# a drop of more than this is reported as a reset (a 1 Wh wobble is rounding).
RESET_TOLERANCE_WH = 1
_MICROS = 1_000_000
Interval = Literal["15m", "hour", "day"]
INTERVALS: tuple[Interval, ...] = ("15m", "hour", "day")


@dataclass(frozen=True, slots=True)
class Reading:
    """One register reading of a connector: when (naive UTC), Wh, and its R-95 rank."""

    at: datetime
    wh: int
    rank: int = 2  # context priority; Sample.Periodic by default
    order: int = 0  # arrival order, the last tie-breaker


@dataclass(frozen=True, slots=True)
class Delta:
    """The energy of one interval between two good readings (R-96); `wh` is never negative."""

    start: datetime
    end: datetime
    wh: int
    reset: bool = False


@dataclass(frozen=True, slots=True)
class Chain:
    """The result of walking readings: intervals, the last good reading, and what was set aside."""

    deltas: list[Delta]
    baseline: Reading | None
    outliers: list[Reading]
    resets: list[Reading]


def frame_reading(samples: Iterable[Sample], at: datetime, order: int = 0) -> Reading | None:
    """R-91/R-92: a frame's register reading (Outlet, phase-less or Σ L1..L3, no signed data), or None."""
    listed = list(samples)
    return reading_of(register_reading(listed), listed, at, order)


def reading_of(value: Decimal | None, samples: Sequence[Sample], at: datetime, order: int = 0) -> Reading | None:
    """`frame_reading` for a frame whose `register_reading` is already known (`value`)."""
    if value is None:
        return None
    rank = max(context_priority(s.context) for s in samples if s.measurand == EAIR)
    return Reading(at, register_wh(value), rank, order)


def max_power_w(max_amperage: int | None, max_voltage: int | None = None, phases: int | None = None) -> int:
    """A connector's maximum power for R-97: amperes x volts (230 unless set) x phases, else the default."""
    if not max_amperage or max_amperage <= 0:
        return DEFAULT_MAX_POWER_W
    return max_amperage * (max_voltage or NOMINAL_VOLTAGE) * max(phases or 1, 1)


def ordered(readings: Iterable[Reading]) -> list[Reading]:
    """R-95: the readings by time, one per timestamp (higher rank, then later arrival, wins)."""
    best: dict[datetime, Reading] = {}
    for reading in readings:
        held = best.get(reading.at)
        if held is None or (reading.rank, reading.order) >= (held.rank, held.order):
            best[reading.at] = reading
    return [best[at] for at in sorted(best)]


def is_outlier(previous: Reading, reading: Reading, max_power: int) -> bool:
    """R-97: the delta implies more than 1.5 x the connector's maximum power."""
    delta = reading.wh - previous.wh
    micros = _micros(reading.at - previous.at)
    if delta <= 0:
        return False
    if micros <= 0:
        return True
    # delta x 3600 / seconds > 1.5 x max, in integers: delta x 3600e6 x 2 > 3 x max x micros
    return delta * 3600 * _MICROS * 2 > 3 * max_power * micros


def walk(readings: Iterable[Reading], baseline: Reading | None = None, max_power: int = DEFAULT_MAX_POWER_W) -> Chain:
    """R-96/R-97: the intervals of readings after `baseline` (readings at or before it are ignored)."""
    deltas: list[Delta] = []
    outliers: list[Reading] = []
    resets: list[Reading] = []
    for reading in ordered(readings):
        if baseline is not None and reading.at <= baseline.at:
            continue
        if baseline is None:
            baseline = reading
            continue
        if is_outlier(baseline, reading, max_power):
            outliers.append(reading)
            continue
        delta = reading.wh - baseline.wh
        reset = delta < -RESET_TOLERANCE_WH
        if reset:
            resets.append(reading)
        deltas.append(Delta(baseline.at, reading.at, max(delta, 0), reset))
        baseline = reading
    return Chain(deltas, baseline, outliers, resets)


def energy_deltas(registers: Sequence[int]) -> list[int]:
    """R-96 on a plain sequence of register values: the delta of each step (0 for a reset)."""
    return [max(b - a, 0) for a, b in itertools.pairwise(registers)]


def bucket_start(moment: datetime) -> datetime:
    """The start of the 15-minute bucket holding a naive UTC moment."""
    return moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)


def _micros(span: timedelta) -> int:
    return (span.days * 86_400 + span.seconds) * _MICROS + span.microseconds


def _half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


def spread_from(delta: Delta) -> datetime:
    """The first moment an interval's energy is spread over: its start, or `MAX_SPREAD` before its end."""
    return max(delta.start, delta.end - MAX_SPREAD)


def spread(delta: Delta) -> Iterator[tuple[datetime, int]]:
    """R-98: the interval's Wh per 15-minute bucket, by time overlap, whole Wh adding up to `delta.wh`."""
    first = spread_from(delta)
    total = _micros(delta.end - first)
    if delta.wh == 0 or total <= 0:
        return
    start = bucket_start(first)
    given = 0
    while start < delta.end:
        end = start + BUCKET
        covered = _micros(min(end, delta.end) - first)
        share = _half_up(delta.wh * covered, total) - given
        given += share
        if share:
            yield start, share
        start = end


def rollup(deltas: Iterable[Delta]) -> dict[datetime, int]:
    """The Wh of every 15-minute bucket the intervals touch (buckets that get 0 are left out)."""
    buckets: dict[datetime, int] = {}
    for delta in deltas:
        for start, wh in spread(delta):
            buckets[start] = buckets.get(start, 0) + wh
    return buckets


def local_midnight(day: date, zone: tzinfo) -> datetime:
    """The first moment of a local date, as naive UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC).replace(tzinfo=None)


def local_buckets(first: date, last: date, zone: tzinfo, interval: Interval) -> list[datetime]:
    """The bucket boundaries (naive UTC) of the local dates first..last: n buckets give n + 1 boundaries.

    A day runs from local midnight to local midnight; an hour starts where the local clock
    shows minute 0, so a spring-forward day has 23 hours and a fall-back day 25.
    """
    start, end = local_midnight(first, zone), local_midnight(last + timedelta(days=1), zone)
    if interval == "day":
        return [local_midnight(first + timedelta(days=n), zone) for n in range((last - first).days + 2)]
    bounds = [start]
    moment = start + BUCKET
    while moment < end:
        if interval == "15m" or _local_minute(moment, zone) == 0:
            bounds.append(moment)
        moment += BUCKET
    return [*bounds, end]


def _local_minute(moment: datetime, zone: tzinfo) -> int:
    return moment.replace(tzinfo=UTC).astimezone(zone).minute


def sum_into(bounds: Sequence[datetime], rollups: Mapping[datetime, int]) -> list[int]:
    """Add 15-minute bucket Wh into the buckets between consecutive boundaries (outside ones are dropped)."""
    totals = [0] * (len(bounds) - 1)
    for start, wh in rollups.items():
        index = bisect.bisect_right(bounds, start) - 1
        if 0 <= index < len(totals):
            totals[index] += wh
    return totals


def kwh_text(wh: int) -> str:
    """Whole Wh as kWh text with three decimals (exact: 1250 -> "1.250")."""
    return str((Decimal(wh) / 1000).quantize(Decimal("0.001")))


def to_local(moment: datetime, zone: tzinfo) -> datetime:
    """A naive UTC moment in the zone (aware)."""
    return moment.replace(tzinfo=UTC).astimezone(zone)
