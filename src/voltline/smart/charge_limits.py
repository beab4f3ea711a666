"""Per-connector charge-limit caps (DESIGN "v3 API"): validation, who enforces them, and their profile.

A cap is in whole tenths of an ampere per phase (R-16: unit A is per phase), floored to 0.1 A
(R-16 "round down"); 0 pauses (R-41), and 0 < cap < 6 A is refused (R-40).

Who enforces a cap (`controller_manages`): the smart-charging controller, for every connector of a
site it balances (`load_management`) or gates (`smart_charging` not `disabled`), when smart control
runs at all (`VOLTLINE_SMART_CONTROL`). It allocates min(allocation, cap) (smart/scheduler.py),
so Σ limits ≤ C as before. Any other connector (a site with neither, smart control off, a charger
on no site) gets the cap installed as a TxDefaultProfile of its own at the requested stack level
(`cap_profile`), with ids `CHARGE_LIMIT_BASE + n`: the controller's are 1000+n (TxProfile),
2000+n (TxDefaultProfile) and 3000 (ChargePointMaxProfile), smart/profiles.py (R-20), so neither
ever replaces or clears the other's by id.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from voltline.errors import ValidationError
from voltline.smart.allocation import MIN_TENTHS
from voltline.smart.profiles import NOMINAL_VOLTAGE, tx_default_profile

CHARGE_LIMIT_BASE = 4000  # + connector number (1..999)
MAX_TENTHS = 10_000  # 1,000 A: far above any connector's rating
MAX_STACK_LEVEL = 100
LIMIT_FIELD = "limit"
PERIOD_LIMIT_FIELD = "charging_profile.charging_schedule.charging_schedule_period.0.limit"
LIMIT_BETWEEN = "The limit must be 0 (pause) or at least 6 A."
LIMIT_NUMBER = "The limit must be a number."
LIMIT_MIN = "The limit must be at least 0."
LIMIT_MAX = "The limit may not be greater than 1000 A."


def cap_tenths(limit: Any, *, field: str = LIMIT_FIELD) -> int:
    """A limit in A as whole tenths, floored (R-16); 0 pauses; 0 < limit < 6 A is a ValidationError (R-40)."""
    if isinstance(limit, bool) or not isinstance(limit, (int, float, Decimal, str)):
        raise ValidationError.single(field, LIMIT_NUMBER)
    try:
        amps = Decimal(str(limit))
    except InvalidOperation:
        raise ValidationError.single(field, LIMIT_NUMBER) from None
    if not amps.is_finite():
        raise ValidationError.single(field, LIMIT_NUMBER)
    if amps < 0:
        raise ValidationError.single(field, LIMIT_MIN)
    tenths = int((amps * 10).to_integral_value(rounding=ROUND_FLOOR))
    if amps > 0 and tenths < MIN_TENTHS:
        raise ValidationError.single(field, LIMIT_BETWEEN)
    if tenths > MAX_TENTHS:
        raise ValidationError.single(field, LIMIT_MAX)
    return tenths


def stack_level_of(value: Any) -> int:
    """The requested stack level (default 1, DESIGN "v3 API"), an integer 0..100."""
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_STACK_LEVEL:
        raise ValidationError.single("stack_level", f"The stack level must be an integer from 0 to {MAX_STACK_LEVEL}.")
    return value


def phases_of(value: Any) -> int | None:
    """The requested number of phases (None: the connector's), 1..3 (OCPP 1.6 numberPhases)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3:
        raise ValidationError.single("number_phases", "The number of phases must be 1, 2 or 3.")
    return value


def watts_to_tenths(watts: Any, phases: int, *, field: str = LIMIT_FIELD) -> int:
    """R-16: a W limit as A per phase on `phases` at 230 V, floored to 0.1 A (11,000 W on 3 phases = 15.9 A)."""
    try:
        total = Decimal(str(watts))
    except InvalidOperation:
        raise ValidationError.single(field, LIMIT_NUMBER) from None
    if not total.is_finite():
        raise ValidationError.single(field, LIMIT_NUMBER)
    return cap_tenths(total / (NOMINAL_VOLTAGE * max(1, phases)), field=field)


def profile_limit(profile: Mapping[str, Any], phases: int) -> int:
    """The cap a `charging-profile` body's profile means: its first period's limit, W converted (R-16)."""
    schedule = profile.get("charging_schedule")
    periods = schedule.get("charging_schedule_period") if isinstance(schedule, Mapping) else None
    if not isinstance(periods, list) or not periods or not isinstance(periods[0], Mapping):
        raise ValidationError.single(
            "charging_profile.charging_schedule.charging_schedule_period", "The charging schedule needs a period."
        )
    first = min(periods, key=lambda p: p.get("start_period", 0) if isinstance(p, Mapping) else math.inf)
    limit = first.get("limit")
    if isinstance(limit, bool) or not isinstance(limit, (int, float)):
        raise ValidationError.single(PERIOD_LIMIT_FIELD, LIMIT_NUMBER)
    unit = str(schedule.get("charging_rate_unit", "A")) if isinstance(schedule, Mapping) else "A"
    if unit == "W":
        return watts_to_tenths(limit, phases, field=PERIOD_LIMIT_FIELD)
    if unit != "A":
        raise ValidationError.single(
            "charging_profile.charging_schedule.charging_rate_unit", "The charging rate unit must be A or W."
        )
    return cap_tenths(limit, field=PERIOD_LIMIT_FIELD)


def controller_manages(smart_control: bool, site: Mapping[Any, Any] | None) -> bool:
    """True when the smart-charging controller enforces caps on the site's connectors (module docstring)."""
    if not smart_control or site is None:
        return False
    return bool(site["load_management"]) or site["smart_charging"] != "disabled"


def cap_profile(number: int, limit: int, stack_level: int, phases: int, now: datetime) -> dict[str, Any]:
    """The TxDefaultProfile that installs a cap on an unmanaged connector (unit A, one period, Absolute, R-14)."""
    profile = tx_default_profile(number, limit, now, stack_level=stack_level, unit="A", phases=phases)
    return {**profile, "chargingProfileId": profile_id(number)}


def profile_id(number: int) -> int:
    """The id of the cap's TxDefaultProfile on a connector."""
    return CHARGE_LIMIT_BASE + number
