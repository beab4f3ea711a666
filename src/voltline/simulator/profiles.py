"""Charging profiles installed on a simulated 1.6 charge point (spec/smart-charging.md §2).

* Set: a profile replaces one with the same id, or with the same connector, purpose and stack
  level (and, for a TxProfile, transaction) — R-10; otherwise profiles stack.
* Within a purpose the highest stack level that has a period at the instant wins, else the next
  lower one (R-11); `effective = min(ChargePointMax, TxProfile if any else TxDefault)` (R-12).
* Schedules: periods from `startPeriod` until the next one, nothing past `duration` (R-13);
  Absolute from `startSchedule`, Relative from the transaction start (or now), Recurring every
  24 h or 7 d in fixed seconds (R-15).
* Limits come out in A per phase; W converts with 230 V and the period's `numberPhases`, else the
  phases in use (R-16).

The charge-point maximum is applied to each connector alone (a simplification: a real station
shares it between connectors). Pure: callers pass the time.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from voltline.simulator.meter import amps_from_watts, floor_tenths, watts_from_amps

PURPOSES = ("ChargePointMaxProfile", "TxDefaultProfile", "TxProfile")
KINDS = ("Absolute", "Recurring", "Relative")
RECURRENCE = {"Daily": 86_400.0, "Weekly": 604_800.0}
HORIZON = timedelta(days=2)


class ProfileError(ValueError):
    """A profile payload that cannot be read."""


@dataclass(frozen=True)
class Period:
    """One schedule period: from `start` seconds, `limit` in the schedule's unit."""

    start: float
    limit: float
    phases: int | None


@dataclass(frozen=True)
class Profile:
    """An installed charging profile."""

    connector_id: int
    profile_id: int
    stack_level: int
    purpose: str
    kind: str
    recurrency: str | None
    valid_from: datetime | None
    valid_to: datetime | None
    transaction_id: int | None
    start_schedule: datetime | None
    duration: float | None
    unit: str
    periods: tuple[Period, ...]
    installed_at: datetime


@dataclass(frozen=True)
class Session:
    """The transaction a connector runs, as profiles see it."""

    transaction_id: int | None
    started_at: datetime


@dataclass(frozen=True)
class Limits:
    """What the charge point supports (its configuration keys)."""

    connectors: int
    max_stack_level: int = 8
    max_periods: int = 24
    max_installed: int = 32


def parse_time(text: Any) -> datetime:
    """Read an OCPP date-time; without an offset it is UTC."""
    if not isinstance(text, str):
        raise ProfileError("a date-time must be a string")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ProfileError(f"not a date-time: {text!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _optional_time(data: dict[str, Any], key: str) -> datetime | None:
    return parse_time(data[key]) if key in data else None


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProfileError(f"{name} must be a number")
    return float(value)


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProfileError(f"{name} must be an integer")
    return value


def parse_profile(connector_id: int, data: Any, now: datetime) -> Profile:
    """Read `csChargingProfiles` into a Profile; raises ProfileError when malformed."""
    if not isinstance(data, dict) or not isinstance(data.get("chargingSchedule"), dict):
        raise ProfileError("csChargingProfiles must be an object with a chargingSchedule")
    schedule = data["chargingSchedule"]
    raw_periods = schedule.get("chargingSchedulePeriod")
    if not isinstance(raw_periods, list) or not raw_periods or not all(isinstance(p, dict) for p in raw_periods):
        raise ProfileError("chargingSchedulePeriod must be a non-empty array of objects")
    periods = tuple(
        Period(_number(p.get("startPeriod"), "startPeriod"), _number(p.get("limit"), "limit"), p.get("numberPhases"))
        for p in raw_periods
    )
    return Profile(
        connector_id=connector_id,
        profile_id=_integer(data.get("chargingProfileId"), "chargingProfileId"),
        stack_level=_integer(data.get("stackLevel"), "stackLevel"),
        purpose=str(data.get("chargingProfilePurpose")),
        kind=str(data.get("chargingProfileKind")),
        recurrency=data.get("recurrencyKind"),
        valid_from=_optional_time(data, "validFrom"),
        valid_to=_optional_time(data, "validTo"),
        transaction_id=data.get("transactionId"),
        start_schedule=_optional_time(schedule, "startSchedule"),
        duration=_number(schedule["duration"], "duration") if "duration" in schedule else None,
        unit=str(schedule.get("chargingRateUnit")),
        periods=periods,
        installed_at=now,
    )


def _schedule_start(profile: Profile, at: datetime, origin: datetime, session: Session | None) -> datetime | None:
    if profile.kind == "Relative":
        return session.started_at if session is not None else origin
    base = profile.start_schedule or profile.valid_from or profile.installed_at
    if profile.kind == "Recurring":
        cycle = RECURRENCE.get(profile.recurrency or "", 86_400.0)
        if at < base:
            return None
        return base + timedelta(seconds=cycle * ((at - base).total_seconds() // cycle))
    return base


def _period_at(profile: Profile, at: datetime, origin: datetime, session: Session | None) -> Period | None:
    if (profile.valid_from and at < profile.valid_from) or (profile.valid_to and at >= profile.valid_to):
        return None
    start = _schedule_start(profile, at, origin, session)
    if start is None:
        return None
    offset = (at - start).total_seconds()
    if offset < 0 or (profile.duration is not None and offset >= profile.duration):
        return None
    current = None
    for period in profile.periods:
        if period.start <= offset:
            current = period
    return current


def _to_amps(profile: Profile, period: Period, phases: int) -> float:
    if profile.unit == "W":
        return amps_from_watts(period.limit, period.phases or phases)
    return floor_tenths(period.limit)


def _reason_to_reject(profile: Profile, limits: Limits, session: Session | None) -> str | None:
    if profile.purpose not in PURPOSES or profile.kind not in KINDS or profile.unit not in ("A", "W"):
        return "unknown purpose, kind or unit"
    if not 0 <= profile.connector_id <= limits.connectors:
        return "unknown connector"
    if profile.purpose == "ChargePointMaxProfile" and (profile.connector_id != 0 or profile.kind == "Relative"):
        return "ChargePointMaxProfile only on connector 0 and not Relative"
    if profile.purpose == "TxProfile" and (profile.connector_id == 0 or session is None):
        return "TxProfile needs an active transaction"
    if profile.purpose == "TxProfile" and profile.transaction_id not in (None, session and session.transaction_id):
        return "TxProfile for another transaction"
    if profile.kind == "Recurring" and profile.recurrency not in RECURRENCE:
        return "Recurring needs a recurrencyKind"
    if not 0 <= profile.stack_level <= limits.max_stack_level or len(profile.periods) > limits.max_periods:
        return "stack level or number of periods out of range"
    if profile.periods[0].start != 0 or any(p.limit < 0 for p in profile.periods):
        return "the first period must start at 0 and limits be positive"
    return None


class ChargingProfiles:
    """The profiles installed on one charge point, and the limits they give."""

    def __init__(self, limits: Limits, hardware_max: float = 32.0) -> None:
        self.limits = limits
        self.hardware_max = hardware_max
        self.installed: list[Profile] = []

    def install(self, profile: Profile, session: Session | None) -> bool:
        """Install (or replace, R-10) a profile; False when the charge point rejects it."""
        if _reason_to_reject(profile, self.limits, session) is not None:
            return False
        if profile.purpose == "TxProfile" and session is not None:
            profile = replace(profile, transaction_id=session.transaction_id)
        kept = [p for p in self.installed if not _replaces(profile, p)]
        if len(kept) >= self.limits.max_installed:
            return False
        self.installed = [*kept, profile]
        return True

    def clear(
        self, profile_id: int | None, connector_id: int | None, purpose: str | None, stack_level: int | None
    ) -> bool:
        """Remove the profile with that id, or every profile matching the filters; False if none matched."""
        matching = [p for p in self.installed if _matches(p, profile_id, connector_id, purpose, stack_level)]
        self.installed = [p for p in self.installed if p not in matching]
        return bool(matching)

    def end_transaction(self, connector_id: int) -> None:
        """Drop the TxProfiles of a connector whose transaction ended (§2.3)."""
        self.installed = [
            p for p in self.installed if not (p.purpose == "TxProfile" and p.connector_id == connector_id)
        ]

    def bind_transaction(self, connector_id: int, transaction_id: int) -> None:
        """Give TxProfiles installed before the transaction id was known (RemoteStart) that id."""
        self.installed = [
            replace(p, transaction_id=transaction_id)
            if p.purpose == "TxProfile" and p.connector_id == connector_id and p.transaction_id is None
            else p
            for p in self.installed
        ]

    def limit_at(
        self, connector_id: int, at: datetime, session: Session | None, phases: int, origin: datetime | None = None
    ) -> float | None:
        """The effective limit in A per phase at `at` (R-12), or None when no profile limits it."""
        scope: dict[str, Any] = {"origin": at if origin is None else origin, "session": session, "phases": phases}
        cap = self._purpose_limit("ChargePointMaxProfile", connector_id, at, **scope)
        tx = self._purpose_limit("TxProfile", connector_id, at, **scope) if session else None
        if tx is None:
            tx = self._purpose_limit("TxDefaultProfile", connector_id, at, **scope)
        defined = [limit for limit in (cap, tx) if limit is not None]
        return min(defined) if defined else None

    def _purpose_limit(
        self, purpose: str, connector_id: int, at: datetime, *, origin: datetime, session: Session | None, phases: int
    ) -> float | None:
        candidates = [p for p in self.installed if p.purpose == purpose and _applies(p, connector_id, session)]
        candidates.sort(key=lambda p: (p.stack_level, p.connector_id), reverse=True)
        for profile in candidates:
            period = _period_at(profile, at, origin, session)
            if period is not None:
                return _to_amps(profile, period, phases)
        return None

    def next_change(self, connector_id: int, at: datetime, session: Session | None) -> datetime | None:
        """The next instant after `at` where a schedule of this connector may change its limit."""
        later = [moment for moment in self._breakpoints(connector_id, at, at + HORIZON, session) if moment > at]
        return min(later, default=None)

    def _breakpoints(self, connector_id: int, start: datetime, end: datetime, session: Session | None) -> set[datetime]:
        moments: set[datetime] = set()
        for profile in self.installed:
            if _applies(profile, connector_id, session):
                moments.update(m for m in _profile_breakpoints(profile, start, end, session) if start <= m < end)
        return moments

    def composite(
        self, connector_id: int, now: datetime, duration: int, *, unit: str, session: Session | None, phases: int
    ) -> dict[str, Any]:
        """The composite schedule for [now, now + duration] in `unit`; hardware maximum where nothing limits."""
        end = now + timedelta(seconds=duration)
        moments = sorted({now} | self._breakpoints(connector_id, now, end, session))
        periods: list[dict[str, Any]] = []
        for moment in moments:
            amps = self.limit_at(connector_id, moment, session, phases, origin=now)
            amps = self.hardware_max if amps is None else min(amps, self.hardware_max)
            limit = watts_from_amps(amps, phases) if unit == "W" else amps
            start = int((moment - now).total_seconds())
            if periods and periods[-1]["startPeriod"] == start:
                periods.pop()
            if not periods or periods[-1]["limit"] != limit:
                periods.append({"startPeriod": start, "limit": limit})
        return {"duration": duration, "chargingRateUnit": unit, "chargingSchedulePeriod": periods}


def _replaces(new: Profile, old: Profile) -> bool:
    if new.profile_id == old.profile_id:
        return True
    same_slot = (new.connector_id, new.purpose, new.stack_level) == (old.connector_id, old.purpose, old.stack_level)
    return same_slot and (new.purpose != "TxProfile" or new.transaction_id == old.transaction_id)


def _matches(
    profile: Profile, profile_id: int | None, connector_id: int | None, purpose: str | None, stack_level: int | None
) -> bool:
    if profile_id is not None:
        return profile.profile_id == profile_id
    return (
        (connector_id is None or profile.connector_id == connector_id)
        and (purpose is None or profile.purpose == purpose)
        and (stack_level is None or profile.stack_level == stack_level)
    )


def _applies(profile: Profile, connector_id: int, session: Session | None) -> bool:
    if profile.purpose == "ChargePointMaxProfile":
        return profile.connector_id == 0
    if profile.purpose == "TxDefaultProfile":
        return profile.connector_id in (0, connector_id)
    if session is None or profile.connector_id != connector_id:
        return False
    return profile.transaction_id is None or profile.transaction_id == session.transaction_id


def _profile_breakpoints(profile: Profile, start: datetime, end: datetime, session: Session | None) -> list[datetime]:
    moments = [m for m in (profile.valid_from, profile.valid_to) if m is not None]
    origins: list[datetime] = []
    first = _schedule_start(profile, start, start, session)
    if first is None and profile.kind == "Recurring":
        first = profile.start_schedule or profile.installed_at
    if first is not None:
        origins.append(first)
    if profile.kind == "Recurring" and first is not None:
        cycle = timedelta(seconds=RECURRENCE.get(profile.recurrency or "", 86_400.0))
        while origins[-1] + cycle < end:
            origins.append(origins[-1] + cycle)
    for origin in origins:
        moments += [origin + timedelta(seconds=p.start) for p in profile.periods]
        if profile.duration is not None:
            moments.append(origin + timedelta(seconds=profile.duration))
    return moments
