"""Live power and currents of a connector, and their sums for a meter (spec/smart-charging.md §8.2-§8.5).

Input is the latest value per measurand and phase (`meter_latest`): the samples of the newest
reading round (everything within `ROUND_WINDOW` of the newest power-related sample) describe the
connector now. R-100 picks the power: `Power.Active.Import` total, the sum of its phases, Σ V*I,
230 V * Σ I, and last ΔE * 3600 / Δt from the last two register samples. R-101 shapes the
currents: a phase never reported is `"-"`, a phase reported before but not in the newest round
is 0. R-102 zeroes a stale connector without an open transaction. A `Current.Import` without a
phase is a per-phase value (R-92) and stands for each of the connector's phases. R-104 sums
connectors per phase for a group without a physical meter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from voltline.domain.meter_values import EAIR, decimal_text
from voltline.domain.transactions import rounded

CURRENT = "Current.Import"
POWER = "Power.Active.Import"
VOLTAGE = "Voltage"
MEASURANDS = (CURRENT, POWER, VOLTAGE, EAIR)
PHASES = ("L1", "L2", "L3")
NOMINAL_VOLTAGE = Decimal(230)
# No charger configuration is stored yet: MeterValueSampleInterval is taken as 60 s (spec §8.1 typical).
DEFAULT_SAMPLE_INTERVAL = timedelta(seconds=60)
# Samples this close to the newest one belong to the same reading (one MeterValues round).
ROUND_WINDOW = timedelta(seconds=10)
NOT_REPORTED = "-"
_PHASE_NAMES = {"L1": "L1", "L2": "L2", "L3": "L3", "L1-N": "L1", "L2-N": "L2", "L3-N": "L3"}
_HUNDREDTH = Decimal("0.01")
_SECONDS_PER_HOUR = 3600


@dataclass(frozen=True, slots=True)
class Reading:
    """The latest value of one measurand and phase (phase "" when none), normalised to W, Wh, A or V."""

    measurand: str
    phase: str
    value: Decimal
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class RegisterSample:
    """An `Energy.Active.Import.Register` reading in Wh at a moment."""

    timestamp: datetime
    wh: Decimal


@dataclass(frozen=True, slots=True)
class Usage:
    """What a connector draws now: currents per phase (None = never reported), power in W."""

    timestamp: datetime | None
    currents: Mapping[str, Decimal | None]
    power: Decimal | None
    phase_power: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MeterTotals:
    """A meter's view: signed amperes per phase, power in W (None when unknown), and its time."""

    currents: Mapping[str, Decimal]
    power: Decimal | None
    phase_power: Mapping[str, Decimal | None]
    updated_at: datetime | None


def stale_after(sample_interval: timedelta = DEFAULT_SAMPLE_INTERVAL) -> timedelta:
    """R-102: data older than max(sample interval + 10 s, 60 s) is stale."""
    return max(sample_interval + timedelta(seconds=10), timedelta(seconds=60))


def phase_name(phase: str) -> str | None:
    """`L1`/`L1-N` -> `L1`; None for no phase, line-to-line values and N (R-92)."""
    return _PHASE_NAMES.get(phase)


def newest_round(readings: Iterable[Reading]) -> list[Reading]:
    """The readings of the newest round: power-related values within ROUND_WINDOW of the newest."""
    relevant = [r for r in readings if r.measurand in MEASURANDS]
    if not relevant:
        return []
    newest = max(r.timestamp for r in relevant)
    return [r for r in relevant if r.timestamp >= newest - ROUND_WINDOW]


def _per_phase(readings: Iterable[Reading], measurand: str) -> dict[str, Decimal]:
    found: dict[str, Decimal] = {}
    for reading in readings:
        name = phase_name(reading.phase)
        if reading.measurand == measurand and name is not None:
            found.setdefault(name, reading.value)
    return found


def _phaseless(readings: Iterable[Reading], measurand: str) -> Decimal | None:
    return next((r.value for r in readings if r.measurand == measurand and r.phase == ""), None)


def connector_phases(phases: int) -> tuple[str, ...]:
    """The phases a connector uses: L1 for a single-phase connector, else L1..L3."""
    return PHASES[:1] if phases == 1 else PHASES


def phase_currents(readings: Iterable[Reading], phases: int = 3) -> dict[str, Decimal]:
    """`Current.Import` per phase; a phase-less value stands for each of the connector's phases (R-92)."""
    readings = list(readings)
    found = _per_phase(readings, CURRENT)
    if found:
        return found
    single = _phaseless(readings, CURRENT)
    return {} if single is None else dict.fromkeys(connector_phases(phases), single)


def _voltages(readings: list[Reading], currents: Mapping[str, Decimal]) -> dict[str, Decimal] | None:
    per_phase = _per_phase(readings, VOLTAGE)
    common = _phaseless(readings, VOLTAGE)
    voltages = {p: per_phase.get(p, common) for p in currents}
    return None if any(v is None for v in voltages.values()) else {p: v for p, v in voltages.items() if v is not None}


def register_power(previous: RegisterSample, latest: RegisterSample) -> Decimal | None:
    """R-100 (5): ΔE * 3600 / Δt in W; 0 after a counter reset (R-96), None without elapsed time."""
    seconds = Decimal(str((latest.timestamp - previous.timestamp).total_seconds()))
    if seconds <= 0:
        return None
    delta = latest.wh - previous.wh
    return Decimal(0) if delta < 0 else delta * _SECONDS_PER_HOUR / seconds


def phase_power(readings: Iterable[Reading], phases: int = 3) -> dict[str, Decimal]:
    """Power per phase in W: measured per phase, else V*I, else 230 V * I (R-100 2-4)."""
    readings = list(readings)
    measured = _per_phase(readings, POWER)
    if measured:
        return measured
    currents = phase_currents(readings, phases)
    voltages = _voltages(readings, currents) or dict.fromkeys(currents, NOMINAL_VOLTAGE)
    return {p: voltages[p] * current for p, current in currents.items()}


def instantaneous_power(
    readings: Iterable[Reading], previous_register: RegisterSample | None = None, phases: int = 3
) -> Decimal | None:
    """R-100: power in W from one reading round, by priority; None when nothing gives it."""
    readings = list(readings)
    total = _phaseless(readings, POWER)
    if total is not None:
        return total
    per_phase = phase_power(readings, phases)
    if per_phase:
        return sum(per_phase.values(), Decimal(0))
    latest = _phaseless(readings, EAIR)
    at = latest_register_time(readings)
    if latest is None or at is None or previous_register is None:
        return None
    return register_power(previous_register, RegisterSample(at, latest))


def latest_register_time(readings: Iterable[Reading]) -> datetime | None:
    """When the phase-less register of the newest round was read; None when that round has none."""
    return max((r.timestamp for r in newest_round(readings) if r.measurand == EAIR and r.phase == ""), default=None)


def live_usage(
    readings: Iterable[Reading],
    *,
    now: datetime,
    open_transaction: bool,
    phases: int = 3,
    previous_register: RegisterSample | None = None,
    sample_interval: timedelta = DEFAULT_SAMPLE_INTERVAL,
) -> Usage:
    """R-101/R-102: a connector's live usage from its latest values (all of them, any age)."""
    readings = [r for r in readings if r.measurand in MEASURANDS]
    reported = phase_currents(readings, phases).keys()
    current_round = newest_round(readings)
    if not current_round:
        return Usage(None, dict.fromkeys(PHASES), None)
    at = max(r.timestamp for r in current_round)
    if not open_transaction and now - at > stale_after(sample_interval):
        zeros = dict.fromkeys(reported, Decimal(0))
        return Usage(now, {p: zeros.get(p) for p in PHASES}, Decimal(0), zeros)
    fresh = phase_currents(current_round, phases)
    currents = {p: fresh.get(p, Decimal(0)) if p in reported else None for p in PHASES}
    power = instantaneous_power(current_round, previous_register, phases)
    return Usage(at, currents, power, _usage_phase_power(current_round, phases, power))


def _usage_phase_power(readings: list[Reading], phases: int, power: Decimal | None) -> dict[str, Decimal]:
    split = phase_power(readings, phases)
    if split or power is None:
        return split
    # Only a total is known (R-100 1 or 5): spread it evenly over the connector's phases.
    used = connector_phases(phases)
    return dict.fromkeys(used, power / len(used))


def kilowatt_text(watts: Decimal | None) -> str:
    """R-101: W as kW with two decimals, half-up (7364 -> "7.36"); no power is "0.00"."""
    return str(rounded((watts or Decimal(0)) / 1000, _HUNDREDTH))


def current_text(amps: Decimal | None) -> str:
    """R-101: a phase current as the API shows it ("15.9"), "-" when never reported."""
    return NOT_REPORTED if amps is None else decimal_text(amps)


def sum_usages(usages: Iterable[Usage]) -> MeterTotals:
    """R-104: a virtual meter: currents and power summed per phase over connectors."""
    currents = dict.fromkeys(PHASES, Decimal(0))
    phase_total: dict[str, Decimal | None] = dict.fromkeys(PHASES)
    power: Decimal | None = None
    stamps: list[datetime] = []
    for usage in usages:
        for phase, amps in usage.currents.items():
            currents[phase] += amps or 0
        for phase, watts in usage.phase_power.items():
            phase_total[phase] = (phase_total[phase] or Decimal(0)) + watts
        if usage.power is not None:
            power = (power or Decimal(0)) + usage.power
        if usage.timestamp is not None:
            stamps.append(usage.timestamp)
    return MeterTotals(currents, power, phase_total, max(stamps, default=None))


@dataclass(frozen=True, slots=True)
class MeterReading:
    """A physical meter's reading: signed amperes per phase and, when measured, watts."""

    at: datetime
    currents: Mapping[str, Decimal]
    power: Decimal | None = None
    phase_power: Mapping[str, Decimal | None] = field(default_factory=dict)


def meter_totals(reading: MeterReading | None) -> MeterTotals:
    """R-103: a meter's currents and power; missing phase power is 230 V * I, a missing total Σ phases."""
    if reading is None:
        return MeterTotals(dict.fromkeys(PHASES, Decimal(0)), None, dict.fromkeys(PHASES), None)
    currents = {p: reading.currents.get(p, Decimal(0)) for p in PHASES}
    per_phase = {p: _or(reading.phase_power.get(p), NOMINAL_VOLTAGE * currents[p]) for p in PHASES}
    total = _or(reading.power, sum(per_phase.values(), Decimal(0)))
    return MeterTotals(currents, total, per_phase, reading.at)


def _or(value: Decimal | None, fallback: Decimal) -> Decimal:
    return fallback if value is None else value


def charger_reading(readings: Iterable[Reading], phases: int = 3) -> MeterReading | None:
    """A meter reading from a charger's own samples (its connector 0 / grid side); None without currents."""
    current_round = newest_round(readings)
    currents = phase_currents(current_round, phases)
    if not currents:
        return None
    measured = _per_phase(current_round, POWER)
    power = _phaseless(current_round, POWER)
    if power is None and measured:
        power = sum(measured.values(), Decimal(0))
    at = max(r.timestamp for r in current_round)
    return MeterReading(at, currents, power, {p: measured.get(p) for p in PHASES})


def newer_reading(first: MeterReading | None, second: MeterReading | None) -> MeterReading | None:
    """Whichever reading is newer (the first on a tie); None when neither exists."""
    if first is None or second is None:
        return first or second
    return second if second.at > first.at else first
