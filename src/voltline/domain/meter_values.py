"""Meter values as OCPP sends them, normalised to base units (spec/smart-charging.md §8.1-§8.2).

A sample keeps the charger's text (`value`, `unit`) and gains `normalised`: a decimal text in
the base unit (Wh, W, varh, var, VA, A, V, ...) without an exponent, or None when the value is
not a finite number or is signed meter data (R-91: evidence only). Missing fields take the
OCPP defaults (measurand EAIR, context Sample.Periodic, location Outlet, format Raw, and the
unit of the measurand), so a stored sample always says what it means.

Samples are stored packed, one JSON array per MeterValues frame (DESIGN: data model): each
sample is a positional array `[value, normalised, measurand, phase, unit, context, location,
format]` where a field equal to its default is null and trailing nulls are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

from voltline import codec
from voltline.errors import ValidationError

EAIR = "Energy.Active.Import.Register"
DEFAULT_CONTEXT = "Sample.Periodic"
DEFAULT_LOCATION = "Outlet"
DEFAULT_FORMAT = "Raw"
SIGNED_DATA = "SignedData"
# R-94 (Decision): a sample more than 5 minutes ahead of our clock is refused.
MAX_CLOCK_AHEAD = timedelta(minutes=5)
# A reading longer than this, or beyond 10^±30, is not a meter reading (and would not fit a column).
MAX_VALUE_CHARS = 64
MAX_EXPONENT = 30
MAX_MULTIPLIER = 30
# An energy register beyond 1 TWh is no meter's: it would overflow the 64-bit Wh columns once summed.
MAX_REGISTER_WH = 10**12
# Sample ids are frame_id * 1000 + position (DESIGN), so a stored frame holds at most 1000 samples.
SAMPLES_PER_FRAME = 1000

# `k*` times 1000 and `m*` divided by 1000 into the base unit; only units OCPP (1.6 and 2.0.1) names.
_SCALED_UNITS: dict[str, tuple[str, int]] = {
    "kWh": ("Wh", 3),
    "kW": ("W", 3),
    "kvarh": ("varh", 3),
    "kvar": ("var", 3),
    "kVA": ("VA", 3),
    "kVAh": ("VAh", 3),
    "kA": ("A", 3),
    "kV": ("V", 3),
    "mWh": ("Wh", -3),
    "mW": ("W", -3),
    "mA": ("A", -3),
    "mV": ("V", -3),
}
# R-91 and OCPP 1.6 §7.31: the unit a measurand has when the charger names none.
_DEFAULT_UNITS: tuple[tuple[str, str | None], ...] = (
    ("Energy.Active.", "Wh"),
    ("Energy.Reactive.", "varh"),
    ("Energy.Apparent.", "VAh"),
    ("Power.Active.", "W"),
    ("Power.Offered", "W"),
    ("Power.Reactive.", "var"),
    ("Power.Apparent.", "VA"),
    ("Power.Factor", None),
    ("Current.", "A"),
    ("Voltage", "V"),
    ("SoC", "Percent"),
    ("Temperature", "Celsius"),
)
MAX_CACHED_MEASURANDS = 256
_UNIT_OF_MEASURAND: dict[str, str | None] = {}
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_PLAIN = re.compile(r"([+-]?)(0|[1-9]\d{0,29})(?:\.(\d{0,29}[1-9])?0*)?", re.ASCII)
_CONTEXT = Context(prec=80, Emax=999, Emin=-999)
_CONTEXT_PRIORITY = {"Transaction.End": 3, "Sample.Periodic": 2, "Sample.Clock": 1}
_PHASES = {"L1": "L1", "L2": "L2", "L3": "L3", "L1-N": "L1", "L2-N": "L2", "L3-N": "L3"}


@dataclass(frozen=True, slots=True)
class Sample:
    """One sampled value as stored: the raw fields plus the normalised value (spec §8.2)."""

    value: str
    measurand: str = "Energy.Active.Import.Register"
    phase: str | None = None
    unit: str | None = None
    context: str | None = None
    location: str | None = None
    format: str | None = None
    normalised: str | None = None  # decimal text in the base unit (Wh, W, A, V, ...) or None when unparseable


class FutureTimestampError(ValidationError):
    """A meter value is stamped too far ahead of the server's clock (R-94)."""

    def __init__(self, timestamp: datetime) -> None:
        super().__init__({"timestamp": [f"The timestamp {timestamp.isoformat()} is more than 5 minutes ahead."]})


def default_unit(measurand: str) -> str | None:
    """The unit a measurand's value has when none is given (R-91); None when dimensionless or unknown."""
    try:
        return _UNIT_OF_MEASURAND[measurand]
    except KeyError:
        pass
    unit = next((unit for prefix, unit in _DEFAULT_UNITS if measurand.startswith(prefix)), None)
    if len(_UNIT_OF_MEASURAND) < MAX_CACHED_MEASURANDS:
        _UNIT_OF_MEASURAND[measurand] = unit
    return unit


def base_unit(unit: str | None) -> str | None:
    """The unit a normalised value is in: Wh for kWh, W for kW, ... (R-90)."""
    if unit is None:
        return None
    return _SCALED_UNITS.get(unit, (unit, 0))[0]


def parse_value(text: str) -> Decimal | None:
    """R-90: a 1.6 value string as a finite decimal, or None when it is not one."""
    stripped = text.strip()
    if len(stripped) > MAX_VALUE_CHARS or not _NUMBER.fullmatch(stripped):
        return None
    return Decimal(stripped)


def decimal_text(number: Decimal) -> str:
    """A decimal as plain text: no exponent, no trailing zeros, no negative zero."""
    if number.is_zero():
        return "0"
    return format(number.normalize(_CONTEXT), "f")


def _normalised(value: str | float | Decimal, unit: str | None, multiplier: int) -> str | None:
    if isinstance(value, str) and not multiplier and unit not in _SCALED_UNITS:
        plain = _PLAIN.fullmatch(value.strip()) if len(value) <= MAX_VALUE_CHARS else None
        if plain is not None:  # the common case, without Decimal arithmetic: "230.10" -> "230.1"
            sign, whole, fraction = plain.groups()
            text = f"{whole}.{fraction}" if fraction else whole
            return "0" if text == "0" else text if sign != "-" else f"-{text}"
    number = parse_value(value) if isinstance(value, str) else _finite(value)
    if number is None or abs(multiplier) > MAX_MULTIPLIER:
        return None
    if number.is_zero():
        return "0"
    exponent = multiplier + (_SCALED_UNITS[unit][1] if unit in _SCALED_UNITS else 0)
    if abs(number.adjusted() + exponent) > MAX_EXPONENT:
        return None
    text = decimal_text(number.scaleb(exponent, _CONTEXT))
    return text if len(text) <= MAX_VALUE_CHARS else None


def _finite(value: float | Decimal) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(value if isinstance(value, Decimal) else repr(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return number if number.is_finite() else None


def _value_text(value: str | float | Decimal) -> str:
    if isinstance(value, str):
        return value
    return str(value) if isinstance(value, Decimal) else repr(value)


def normalise_sample(
    value: str | float | Decimal,
    *,
    measurand: str | None = None,
    phase: str | None = None,
    unit: str | None = None,
    context: str | None = None,
    location: str | None = None,
    format: str | None = None,
    multiplier: int = 0,
    signed: bool = False,
) -> Sample:
    """One SampledValue with its defaults applied and its value in the base unit (R-90, R-91).

    `value` is the 1.6 string or the 2.0.1 number; `multiplier` is 2.0.1's power of ten;
    `signed` marks a 2.0.1 sample that carries `signedMeterValue` (stored as format SignedData).
    """
    measurand = measurand or EAIR
    unit = unit or default_unit(measurand)
    format = SIGNED_DATA if signed else (format or DEFAULT_FORMAT)
    return Sample(
        value=_value_text(value),
        measurand=measurand,
        phase=phase,
        unit=unit,
        context=context or DEFAULT_CONTEXT,
        location=location or DEFAULT_LOCATION,
        format=format,
        normalised=None if format == SIGNED_DATA else _normalised(value, unit, multiplier),
    )


def is_numeric(sample: Sample) -> bool:
    """True when the sample may be aggregated: a finite value that is not signed meter data (R-91)."""
    return sample.normalised is not None and sample.format != SIGNED_DATA


def context_priority(context: str | None) -> int:
    """R-95's ranking for samples with the same timestamp: End > Periodic > Clock > others."""
    return _CONTEXT_PRIORITY.get(context or DEFAULT_CONTEXT, 0)


def naive_utc(moment: datetime) -> datetime:
    """A moment as stored: naive UTC."""
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def frame_timestamp(timestamp: datetime | None, received_at: datetime) -> datetime:
    """R-94: the sample's own time (naive UTC), the arrival time when it has none; too far ahead is refused."""
    if timestamp is None:
        return received_at
    timestamp = naive_utc(timestamp)
    if timestamp - received_at > MAX_CLOCK_AHEAD:
        raise FutureTimestampError(timestamp)
    return timestamp


def _preferred_location(samples: Sequence[Sample]) -> str | None:
    locations = [sample.location or DEFAULT_LOCATION for sample in samples]
    if DEFAULT_LOCATION in locations:
        return DEFAULT_LOCATION
    return locations[0] if locations else None


def register_reading(samples: Iterable[Sample]) -> Decimal | None:
    """R-92: the frame's EAIR in Wh: Outlet first, the phase-less value, else the sum of L1..L3."""
    candidates = [s for s in samples if s.measurand == EAIR and is_numeric(s)]
    location = _preferred_location(candidates)
    chosen = [s for s in candidates if (s.location or DEFAULT_LOCATION) == location]
    for sample in chosen:
        if sample.phase is None:
            return _plausible(Decimal(sample.normalised or "0"))
    per_phase = phase_values(chosen, EAIR)
    return _plausible(sum(per_phase.values(), Decimal(0))) if per_phase else None


def _plausible(register: Decimal) -> Decimal | None:
    return register if abs(register) < MAX_REGISTER_WH else None


def phase_values(samples: Iterable[Sample], measurand: str) -> dict[str, Decimal]:
    """R-92: the measurand per phase L1..L3 (`Lx-N` counts as `Lx`; line-to-line and N are left out).

    Outlet is preferred over other locations; the first sample of a phase wins.
    """
    candidates = [s for s in samples if s.measurand == measurand and is_numeric(s) and s.phase in _PHASES]
    location = _preferred_location(candidates)
    found: dict[str, Decimal] = {}
    for sample in candidates:
        if (sample.location or DEFAULT_LOCATION) == location:
            found.setdefault(_PHASES[sample.phase or ""], Decimal(sample.normalised or "0"))
    return dict(sorted(found.items()))


def register_wh(reading: Decimal) -> int:
    """A register reading as whole Wh, rounded half-up (DESIGN: integer Wh)."""
    return int(reading.quantize(Decimal(1), rounding=ROUND_HALF_UP, context=_CONTEXT))


def pack_samples(samples: Iterable[Sample]) -> str:
    """The samples as the compact JSON text stored in `meter_frames.samples`."""
    return codec.encode_json([_packed(sample) for sample in samples]).decode()


def _packed(sample: Sample) -> list[str | None]:
    measurand = sample.measurand
    row = [sample.value, sample.normalised, None if measurand == EAIR else measurand, sample.phase]
    unit, context, location, format_ = sample.unit, sample.context, sample.location, sample.format
    if format_ != DEFAULT_FORMAT:
        return [
            *row,
            _not_default_unit(measurand, unit),
            _not(context, DEFAULT_CONTEXT),
            _not(location, DEFAULT_LOCATION),
            format_,
        ]
    if location != DEFAULT_LOCATION:
        return [*row, _not_default_unit(measurand, unit), _not(context, DEFAULT_CONTEXT), location]
    if context != DEFAULT_CONTEXT:
        return [*row, _not_default_unit(measurand, unit), context]
    unit = _not_default_unit(measurand, unit)
    if unit is not None:
        return [*row, unit]
    while row[-1] is None:
        row.pop()
    return row


def _not(value: str | None, default: str) -> str | None:
    return None if value == default else value


def _not_default_unit(measurand: str, unit: str | None) -> str | None:
    return None if unit == default_unit(measurand) else unit


def unpack_samples(text: str | bytes) -> list[Sample]:
    """The samples of a stored frame, with defaults filled in again."""
    return [_unpacked(row) for row in codec.decode_json(text)]


def _unpacked(row: list[Any]) -> Sample:
    value, normalised, measurand, phase, unit, context, location, format_ = (row + [None] * 8)[:8]
    measurand = measurand or EAIR
    return Sample(
        value=value,
        measurand=measurand,
        phase=phase,
        unit=unit or default_unit(measurand),
        context=context or DEFAULT_CONTEXT,
        location=location or DEFAULT_LOCATION,
        format=format_ or DEFAULT_FORMAT,
        normalised=normalised,
    )


def sample_id(frame_id: int, position: int) -> int:
    """A sample's stable id: its frame's id * 1000 plus its position in the frame (DESIGN)."""
    return frame_id * SAMPLES_PER_FRAME + position
