"""OCPP 1.6 charging profiles for a connector limit, and the fallback ladder when one is refused.

Profiles (spec/smart-charging.md §2.7): `csChargingProfiles` dicts in OCPP's camelCase, ready
for `commands.send(identity, "set_charging_profile", {"connector_id": n, "profile": ...})`.
Every profile is `Absolute`, starts one minute in the past (R-14, so a refresh leaves no gap),
has one period from 0 and a stable id per purpose and connector (R-20: 1000+n TxProfile,
2000+n TxDefaultProfile, 3000 ChargePointMaxProfile), so each Set replaces the previous one.
Limits come in integer tenths of an ampere per phase; in A they are written as `tenths / 10`
(a float whose JSON text is exactly "10.6" for 106, surviving the bus's JSON), in W as
230 V x A x phases (R-16; whole watts, as 23 x tenths x phases is an integer). A limit between
0 and 6 A is refused (R-40).

The fallback ladder (R-19, R-43) is a pure state machine over `Attempt`s. Start with
`first_attempt`, send `build_profile(attempt, ...)`, and feed the charger's answer to
`next_fallback`, which returns either the next `Attempt` to send or a final `Outcome`:

    TxProfile (A, limit)           -- only with a known transaction (R-19)
      -> TxDefaultProfile (A, limit) on the connector   (R-19: evcc / Home Assistant style)
      -> same purpose in W           -- when the charger allows W (R-17, R-43 step 1)
      -> 6 A, flagged pause_unsupported  -- only when the limit was a pause (R-43 step 2)
      -> Outcome("rejected")

"Accepted" ends the ladder with Outcome "paused" (limit 0) or "limited". A timeout ends it
with Outcome "unanswered" (nothing is known: keep the old limit reserved, R-87, and retry on
a later run). "Rejected", "NotSupported" or any other word moves one rung down. When the
ladder leaves TxProfile for TxDefaultProfile, clear the connector's TxProfile
(`clear_charging_profile` with id `TX_PROFILE_BASE + n`): an installed TxProfile would
override the TxDefaultProfile (R-12). A controller uses it like this:

    attempt = first_attempt(limit, has_transaction=tx is not None, units=charger_units)
    while isinstance(attempt, Attempt):
        profile = build_profile(attempt, connector, now, transaction_id=tx)
        answer = await send(connector, profile)        # "Accepted" | "Rejected" | ... | "timeout"
        attempt = next_fallback(attempt, answer, units=charger_units)
    outcome = attempt                                  # Outcome: state, attempt, pause_unsupported
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from voltline.errors import VoltlineError
from voltline.smart.allocation import MIN_TENTHS

TX_PROFILE_BASE = 1000
TX_DEFAULT_BASE = 2000
MAX_PROFILE_BASE = 3000
NOMINAL_VOLTAGE = 230
UNITS = ("A", "W")
_LEAD = timedelta(minutes=1)


class ProfileError(VoltlineError):
    """A profile that must not be sent: a limit in (0, 6 A), a bad unit, phase count or transaction."""


class Fallback(enum.Enum):
    """The rungs of the R-19 / R-43 ladder."""

    TX_PROFILE = "tx_profile"
    TX_DEFAULT = "tx_default"
    POWER = "power"
    MINIMUM = "minimum"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One profile to try: rung, purpose, unit and limit in tenths of an ampere."""

    step: Fallback
    purpose: str
    unit: str
    limit: int
    pause_unsupported: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    """How the ladder ended: "limited", "paused", "rejected" or "unanswered", and the last attempt."""

    state: str
    attempt: Attempt

    @property
    def pause_unsupported(self) -> bool:
        """True when a pause was installed as 6 A instead (R-43: "reduced, not paused")."""
        return self.state == "limited" and self.attempt.pause_unsupported


def tx_profile(
    connector: int,
    transaction_id: int,
    limit: int,
    now: datetime,
    *,
    stack_level: int = 1,
    unit: str = "A",
    phases: int = 3,
) -> dict[str, Any]:
    """A TxProfile bound to a running transaction (§2.7, R-19), id 1000 + connector."""
    profile = _profile(TX_PROFILE_BASE + connector, "TxProfile", stack_level, limit, now, unit=unit, phases=phases)
    return {"chargingProfileId": profile.pop("chargingProfileId"), "transactionId": transaction_id, **profile}


def tx_default_profile(
    connector: int, limit: int, now: datetime, *, stack_level: int = 0, unit: str = "A", phases: int = 3
) -> dict[str, Any]:
    """A TxDefaultProfile for a connector (0 = every connector; R-41 pause, R-88 failsafe), id 2000 + connector."""
    return _profile(TX_DEFAULT_BASE + connector, "TxDefaultProfile", stack_level, limit, now, unit=unit, phases=phases)


def charge_point_max_profile(
    limit: int, now: datetime, *, stack_level: int = 0, unit: str = "A", phases: int = 3
) -> dict[str, Any]:
    """A ChargePointMaxProfile for connector 0 (§2.3: only there), id 3000."""
    return _profile(MAX_PROFILE_BASE, "ChargePointMaxProfile", stack_level, limit, now, unit=unit, phases=phases)


def watts(tenths: int, phases: int) -> int:
    """R-16: 230 V x A x phases for a limit in tenths of an ampere (always whole watts)."""
    return NOMINAL_VOLTAGE * tenths * phases // 10


def first_attempt(limit: int, *, has_transaction: bool, units: tuple[str, ...] = UNITS) -> Attempt:
    """The top rung: TxProfile with a transaction, else the connector's TxDefaultProfile (R-19, R-41)."""
    unit = "A" if "A" in units else "W"
    if has_transaction:
        return Attempt(Fallback.TX_PROFILE, "TxProfile", unit, limit)
    return Attempt(Fallback.TX_DEFAULT, "TxDefaultProfile", unit, limit)


def next_fallback(attempt: Attempt, answer: str, *, units: tuple[str, ...] = UNITS) -> Attempt | Outcome:
    """The next rung after the charger's answer ("Accepted", "Rejected", "NotSupported", "timeout")."""
    if answer == "Accepted":
        return Outcome("paused" if attempt.limit == 0 else "limited", attempt)
    if answer == "timeout":
        return Outcome("unanswered", attempt)
    if attempt.step is Fallback.TX_PROFILE:
        return replace(attempt, step=Fallback.TX_DEFAULT, purpose="TxDefaultProfile")
    if attempt.step is Fallback.TX_DEFAULT and attempt.unit == "A" and "W" in units:
        return replace(attempt, step=Fallback.POWER, unit="W")
    if attempt.step is not Fallback.MINIMUM and attempt.limit == 0:
        unit = "A" if "A" in units else "W"
        return replace(attempt, step=Fallback.MINIMUM, unit=unit, limit=MIN_TENTHS, pause_unsupported=True)
    return Outcome("rejected", attempt)


def build_profile(
    attempt: Attempt,
    connector: int,
    now: datetime,
    *,
    transaction_id: int | None = None,
    phases: int = 3,
    tx_stack_level: int = 1,
    default_stack_level: int = 0,
) -> dict[str, Any]:
    """The csChargingProfiles dict for an attempt on a connector."""
    if attempt.purpose == "TxProfile":
        if transaction_id is None:
            raise ProfileError("A TxProfile needs the running transaction's id (R-19)")
        return tx_profile(
            connector, transaction_id, attempt.limit, now, stack_level=tx_stack_level, unit=attempt.unit, phases=phases
        )
    return tx_default_profile(
        connector, attempt.limit, now, stack_level=default_stack_level, unit=attempt.unit, phases=phases
    )


def _profile(
    profile_id: int, purpose: str, stack_level: int, limit: int, now: datetime, *, unit: str, phases: int
) -> dict[str, Any]:
    return {
        "chargingProfileId": profile_id,
        "stackLevel": stack_level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {
            "startSchedule": _start_schedule(now),
            "chargingRateUnit": unit,
            "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": _limit(limit, unit, phases), "numberPhases": phases}
            ],
        },
    }


def _limit(tenths: int, unit: str, phases: int) -> float:
    if unit not in UNITS:
        raise ProfileError(f"Unknown charging rate unit {unit!r}")
    if phases not in (1, 2, 3):
        raise ProfileError(f"numberPhases must be 1..3, got {phases}")
    if tenths < 0 or 0 < tenths < MIN_TENTHS:
        raise ProfileError(f"Limit {tenths / 10} A is neither 0 nor at least 6 A (R-40)")
    return float(watts(tenths, phases)) if unit == "W" else tenths / 10


def _start_schedule(now: datetime) -> str:
    moment = now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo is not None else now
    return (moment - _LEAD).strftime("%Y-%m-%dT%H:%M:%SZ")
