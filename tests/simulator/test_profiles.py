"""Charging profiles on the simulated charge point (spec/smart-charging.md §2.3-§2.5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from voltline.simulator.profiles import ChargingProfiles, Limits, ProfileError, Session, parse_profile

NOW = datetime(2025, 3, 31, 12, 0, tzinfo=UTC)
SESSION = Session(transaction_id=42, started_at=NOW - timedelta(minutes=10))


def profile(
    purpose: str = "TxDefaultProfile",
    limit: float = 16.0,
    *,
    profile_id: int = 1,
    stack_level: int = 0,
    kind: str = "Absolute",
    unit: str = "A",
    periods: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    schedule_fields = {k: fields.pop(k) for k in ("duration", "startSchedule") if k in fields}
    schedule = {
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": periods or [{"startPeriod": 0, "limit": limit}],
        **schedule_fields,
    }
    if kind == "Absolute" and "startSchedule" not in schedule:
        schedule["startSchedule"] = (NOW - timedelta(minutes=1)).isoformat()
    return {
        "chargingProfileId": profile_id,
        "stackLevel": stack_level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        "chargingSchedule": schedule,
        **fields,
    }


def install(store: ChargingProfiles, connector: int, data: dict[str, Any], session: Session | None = None) -> bool:
    return store.install(parse_profile(connector, data, NOW), session)


@pytest.fixture
def store() -> ChargingProfiles:
    return ChargingProfiles(Limits(connectors=2), hardware_max=32.0)


def test_no_profile_means_no_limit(store: ChargingProfiles) -> None:
    assert store.limit_at(1, NOW, None, 3) is None


def test_a_default_on_connector_zero_applies_to_every_connector(store: ChargingProfiles) -> None:
    """§2.3: TxDefaultProfile on connectorId 0 applies to every connector."""
    assert install(store, 0, profile(limit=10.6))
    assert store.limit_at(1, NOW, None, 3) == 10.6
    assert store.limit_at(2, NOW, SESSION, 3) == 10.6


def test_a_tx_profile_overrides_the_default_but_not_the_charge_point_maximum(store: ChargingProfiles) -> None:
    """R-12: effective = min(ChargePointMax, TxProfile if present else TxDefault)."""
    assert install(store, 0, profile(limit=6.0))
    assert install(store, 1, profile("TxProfile", 20.0, profile_id=2), SESSION)
    assert store.limit_at(1, NOW, SESSION, 3) == 20.0
    assert install(store, 0, profile("ChargePointMaxProfile", 16.0, profile_id=3))
    assert store.limit_at(1, NOW, SESSION, 3) == 16.0
    assert store.limit_at(2, NOW, None, 3) == 6.0


def test_the_highest_stack_level_with_a_period_wins_else_the_next_lower(store: ChargingProfiles) -> None:
    """R-11: an expired higher stack level falls through to the lower one."""
    assert install(store, 0, profile(limit=16.0, stack_level=0))
    assert install(store, 0, profile(limit=8.0, profile_id=2, stack_level=1, duration=300))
    assert store.limit_at(1, NOW, None, 3) == 8.0
    assert store.limit_at(1, NOW + timedelta(minutes=5), None, 3) == 16.0


def test_same_purpose_and_stack_level_replaces_and_so_does_the_same_id(store: ChargingProfiles) -> None:
    """R-10: replace on the same id, or on the same stack level and purpose."""
    assert install(store, 1, profile(limit=16.0, profile_id=1))
    assert install(store, 1, profile(limit=12.0, profile_id=2))
    assert [p.profile_id for p in store.installed] == [2]
    assert install(store, 0, profile(limit=10.0, profile_id=2, stack_level=3))
    assert [(p.connector_id, p.stack_level) for p in store.installed] == [(0, 3)]
    assert install(store, 1, profile(limit=9.0, profile_id=5, stack_level=1))
    assert len(store.installed) == 2


@pytest.mark.parametrize(
    ("connector", "data", "session"),
    [
        (1, profile("ChargePointMaxProfile"), None),
        (0, profile("ChargePointMaxProfile", kind="Relative"), None),
        (1, profile("TxProfile"), None),
        (0, profile("TxProfile"), SESSION),
        (1, profile("TxProfile", transactionId=7), SESSION),
        (3, profile(), None),
        (1, profile(stack_level=9), None),
        (1, profile(periods=[{"startPeriod": 60, "limit": 10}]), None),
        (1, profile(periods=[{"startPeriod": i * 60, "limit": 10} for i in range(25)]), None),
        (1, profile(kind="Recurring", startSchedule=NOW.isoformat()), None),
        (1, profile(unit="kW"), None),
    ],
)
def test_profiles_the_charge_point_cannot_accept_are_rejected(
    store: ChargingProfiles, connector: int, data: dict[str, Any], session: Session | None
) -> None:
    """§2.3: ChargePointMax only on 0; no TxProfile without a transaction; limits of the keys in R-17."""
    assert not install(store, connector, data, session)
    assert store.installed == []


def test_the_installed_count_is_capped() -> None:
    small = ChargingProfiles(Limits(connectors=2, max_installed=2))
    assert install(small, 1, profile(profile_id=1, stack_level=1))
    assert install(small, 1, profile(profile_id=2, stack_level=2))
    assert not install(small, 1, profile(profile_id=3, stack_level=3))


def test_watt_limits_convert_with_the_phases_in_use(store: ChargingProfiles) -> None:
    """R-16: A = W / (230 x phases); numberPhases of the period wins when given."""
    assert install(store, 1, profile(limit=11_000, unit="W"))
    assert store.limit_at(1, NOW, None, 3) == 15.9
    assert store.limit_at(1, NOW, None, 1) == 47.8
    assert install(store, 1, profile(unit="W", periods=[{"startPeriod": 0, "limit": 3680, "numberPhases": 1}]))
    assert store.limit_at(1, NOW, None, 3) == 16.0


def test_relative_profiles_start_at_the_transaction_start(store: ChargingProfiles) -> None:
    """R-15: Relative counts from the transaction start (here 10 minutes ago)."""
    periods = [{"startPeriod": 0, "limit": 6.0}, {"startPeriod": 900, "limit": 20.0}]
    assert install(store, 1, profile(kind="Relative", periods=periods))
    assert store.limit_at(1, NOW, SESSION, 3) == 6.0
    assert store.limit_at(1, NOW + timedelta(minutes=5), SESSION, 3) == 20.0
    assert store.limit_at(1, NOW + timedelta(hours=1), None, 3) == 6.0


def test_recurring_daily_profiles_repeat_every_24_hours(store: ChargingProfiles) -> None:
    """R-15: Recurring Daily repeats in fixed seconds from startSchedule."""
    night = [{"startPeriod": 0, "limit": 0.0}, {"startPeriod": 8 * 3600, "limit": 16.0}]
    start = datetime(2025, 3, 1, 0, 0, tzinfo=UTC).isoformat()
    data = profile(kind="Recurring", recurrencyKind="Daily", startSchedule=start, periods=night)
    assert install(store, 0, data)
    assert store.limit_at(1, datetime(2025, 3, 31, 3, 0, tzinfo=UTC), None, 3) == 0.0
    assert store.limit_at(1, datetime(2025, 3, 31, 12, 0, tzinfo=UTC), None, 3) == 16.0
    assert store.next_change(1, datetime(2025, 3, 31, 12, 0, tzinfo=UTC), None) == datetime(2025, 4, 1, tzinfo=UTC)


def test_valid_from_and_valid_to_bound_a_profile(store: ChargingProfiles) -> None:
    later = (NOW + timedelta(hours=1)).isoformat()
    assert install(store, 0, profile(limit=8.0, validFrom=later))
    assert store.limit_at(1, NOW, None, 3) is None
    assert store.next_change(1, NOW, None) == NOW + timedelta(hours=1)


def test_clear_by_id_or_by_filters_and_unknown_when_nothing_matches(store: ChargingProfiles) -> None:
    assert install(store, 0, profile(limit=8.0, profile_id=1))
    assert install(store, 1, profile(limit=9.0, profile_id=2, stack_level=2))
    assert install(store, 1, profile("TxProfile", 10.0, profile_id=3), SESSION)
    assert store.clear(2, None, None, None)
    assert not store.clear(2, None, None, None)
    assert not store.clear(None, 2, None, None)
    assert store.clear(None, None, "TxProfile", None)
    assert [p.profile_id for p in store.installed] == [1]


def test_tx_profiles_end_with_their_transaction_and_bind_late_transaction_ids(store: ChargingProfiles) -> None:
    """§2.3: a TxProfile ceases with its transaction; a RemoteStart profile binds to the id that arrives later."""
    pending = Session(transaction_id=None, started_at=NOW)
    assert install(store, 1, profile("TxProfile", 10.0), pending)
    store.bind_transaction(1, 42)
    assert store.installed[0].transaction_id == 42
    assert store.limit_at(1, NOW, Session(43, NOW), 3) is None
    store.end_transaction(1)
    assert store.installed == []


def test_composite_schedule_merges_purposes_over_time(store: ChargingProfiles) -> None:
    """§2.1 GetCompositeSchedule: the hardware maximum where nothing limits, then the profiles' limits."""
    periods = [{"startPeriod": 0, "limit": 10.0}, {"startPeriod": 600, "limit": 20.0}]
    assert install(store, 0, profile(periods=periods, startSchedule=(NOW + timedelta(minutes=5)).isoformat()))
    assert install(store, 0, profile("ChargePointMaxProfile", 16.0, profile_id=9))
    schedule = store.composite(1, NOW, 3600, unit="A", session=None, phases=3)
    assert schedule == {
        "duration": 3600,
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [
            {"startPeriod": 0, "limit": 16.0},
            {"startPeriod": 300, "limit": 10.0},
            {"startPeriod": 900, "limit": 16.0},
        ],
    }
    watts = store.composite(1, NOW, 60, unit="W", session=None, phases=3)
    assert watts["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 11_040.0}]


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"chargingProfileId": 1},
        profile(periods=[{"startPeriod": "0", "limit": 1}]),
        profile(profile_id=True),  # type: ignore[arg-type]
        profile(startSchedule="yesterday"),
    ],
)
def test_malformed_profiles_raise_profile_error(data: Any) -> None:
    with pytest.raises(ProfileError):
        parse_profile(1, data, NOW)
