"""OCPP 1.6 charging profiles and the fallback ladder (spec/smart-charging.md §2.4-§2.7, §4.2)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from voltline.ocpp.schema_check import decode_payload, encode_payload
from voltline.ocpp.v16 import messages as v16
from voltline.ocpp.v16.commands import build_call
from voltline.services.commands import decode_request, encode_request
from voltline.smart.profiles import (
    Attempt,
    Fallback,
    Outcome,
    ProfileError,
    build_profile,
    charge_point_max_profile,
    first_attempt,
    next_fallback,
    tx_default_profile,
    tx_profile,
    watts,
)

NOW = datetime(2025, 1, 15, 18, 30, 15, 123456)


def through_gateway(connector: int, profile: dict[str, Any]) -> v16.SetChargingProfileRequest:
    """The request the gateway builds from the neutral command after a trip over the bus's JSON."""
    command, args, _ = decode_request(
        encode_request("set_charging_profile", {"connector_id": connector, "profile": profile})
    )
    action, request = build_call(command, args)
    assert action == "SetChargingProfile"
    assert isinstance(request, v16.SetChargingProfileRequest)
    return request


def period_limit(request: v16.SetChargingProfileRequest) -> Decimal:
    """The single period's limit of a SetChargingProfile request."""
    (period,) = request.cs_charging_profiles.charging_schedule.charging_schedule_period
    return period.limit


def test_tx_profile_shape() -> None:
    """spec/smart-charging.md §2.7, R-14, R-20: Absolute TxProfile, id 1000+n, start now - 1 min."""
    assert tx_profile(2, 77, 106, NOW) == {
        "chargingProfileId": 1002,
        "transactionId": 77,
        "stackLevel": 1,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {
            "startSchedule": "2025-01-15T18:29:15Z",
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10.6, "numberPhases": 3}],
        },
    }


def test_tx_default_profile_shape() -> None:
    """spec/smart-charging.md §2.7, R-19, R-20, R-41: TxDefaultProfile id 2000+n, no transaction id."""
    profile = tx_default_profile(1, 0, NOW)
    assert profile["chargingProfileId"] == 2001
    assert profile["chargingProfilePurpose"] == "TxDefaultProfile"
    assert profile["stackLevel"] == 0
    assert "transactionId" not in profile
    assert profile["chargingSchedule"]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 0.0, "numberPhases": 3}
    ]


@pytest.mark.parametrize(
    "profile",
    [
        pytest.param(tx_profile(1, 5, 106, NOW), id="tx-profile-A"),
        pytest.param(tx_profile(1, 5, 160, NOW, unit="W", phases=1), id="tx-profile-W-1-phase"),
        pytest.param(tx_default_profile(1, 0, NOW), id="tx-default-pause"),
        pytest.param(tx_default_profile(0, 106, NOW), id="tx-default-connector-0-failsafe"),
        pytest.param(charge_point_max_profile(320, NOW), id="charge-point-max"),
    ],
)
def test_profiles_validate_against_the_ocpp_schema(profile: dict[str, Any]) -> None:
    """OCPP 1.6 SetChargingProfile.req: the profile decodes strictly through the gateway's checks."""
    request = through_gateway(1, profile)
    strict = decode_payload(
        v16.SetChargingProfileRequest, json.dumps({"connectorId": 1, "csChargingProfiles": profile})
    )
    assert strict == request
    assert request.cs_charging_profiles.charging_profile_id == profile["chargingProfileId"]


def test_ten_point_six_encodes_exactly() -> None:
    """DESIGN R-82: limits encoded from integer tenths, so 10.6 is exactly "10.6" on the wire."""
    profile = tx_profile(1, 5, 106, NOW)
    request = through_gateway(1, profile)
    assert str(period_limit(request)) == "10.6"
    assert b'"limit":10.6,' in encode_payload(request)
    assert '"limit": 10.6,' in json.dumps(profile)


@pytest.mark.parametrize("tenths", [60, 61, 66, 99, 106, 159, 315, 320, 800])
def test_every_tenth_survives_the_wire(tenths: int) -> None:
    """spec/smart-charging.md R-16: one decimal, multipleOf 0.1 checked on the decimal text."""
    assert period_limit(through_gateway(1, tx_profile(1, 5, tenths, NOW))) == Decimal(tenths) / 10


@pytest.mark.parametrize(
    ("tenths", "phases", "expected"),
    [(160, 1, 3680), (160, 3, 11040), (106, 3, 7314), (60, 1, 1380), (0, 3, 0)],
)
def test_watts_conversion(tenths: int, phases: int, expected: int) -> None:
    """spec/smart-charging.md R-16: W = 230 x A x phases (16 A 1-phase 3680 W, 3-phase 11040 W)."""
    assert watts(tenths, phases) == expected
    request = through_gateway(1, tx_profile(1, 5, tenths, NOW, unit="W", phases=phases))
    (period,) = request.cs_charging_profiles.charging_schedule.charging_schedule_period
    assert request.cs_charging_profiles.charging_schedule.charging_rate_unit == "W"
    assert period.limit == expected
    assert period.number_phases == phases


@pytest.mark.parametrize("tenths", [1, 30, 59, -10])
def test_limits_between_zero_and_six_amps_are_refused(tenths: int) -> None:
    """spec/smart-charging.md R-40: never send 0 < L < 6 A."""
    with pytest.raises(ProfileError):
        tx_profile(1, 5, tenths, NOW)


def test_bad_unit_or_phases_are_refused() -> None:
    """spec/smart-charging.md R-16: unit A or W, numberPhases 1..3."""
    with pytest.raises(ProfileError):
        tx_profile(1, 5, 60, NOW, unit="kW")
    with pytest.raises(ProfileError):
        tx_default_profile(1, 60, NOW, phases=4)


def test_aware_now_is_written_in_utc() -> None:
    """spec/smart-charging.md R-14: startSchedule is UTC with a Z."""
    from zoneinfo import ZoneInfo

    aware = datetime(2025, 1, 15, 19, 30, 15, tzinfo=ZoneInfo("Europe/Amsterdam"))
    assert tx_profile(1, 5, 60, aware)["chargingSchedule"]["startSchedule"] == "2025-01-15T18:29:15Z"


def run_ladder(attempt: Attempt | Outcome, answers: list[str], units: tuple[str, ...] = ("A", "W")) -> list[Any]:
    """Feed answers to the ladder; the attempts tried and the final outcome."""
    seen: list[Any] = []
    for answer in answers:
        assert isinstance(attempt, Attempt)
        seen.append((attempt.step, attempt.purpose, attempt.unit, attempt.limit))
        attempt = next_fallback(attempt, answer, units=units)
    seen.append(attempt)
    return seen


def test_pause_ladder_ends_at_six_amps_flagged() -> None:
    """spec/smart-charging.md R-19, R-43: TxProfile 0 A -> TxDefault 0 A -> 0 W -> 6 A pause_unsupported."""
    steps = run_ladder(first_attempt(0, has_transaction=True), ["Rejected", "NotSupported", "Rejected", "Accepted"])
    assert steps[:4] == [
        (Fallback.TX_PROFILE, "TxProfile", "A", 0),
        (Fallback.TX_DEFAULT, "TxDefaultProfile", "A", 0),
        (Fallback.POWER, "TxDefaultProfile", "W", 0),
        (Fallback.MINIMUM, "TxDefaultProfile", "A", 60),
    ]
    outcome = steps[-1]
    assert isinstance(outcome, Outcome)
    assert outcome.state == "limited"
    assert outcome.pause_unsupported


def test_pause_ladder_rejected_everywhere() -> None:
    """spec/smart-charging.md R-43: every rung refused -> final "rejected"."""
    outcome = run_ladder(first_attempt(0, has_transaction=True), ["Rejected"] * 4)[-1]
    assert outcome == Outcome("rejected", Attempt(Fallback.MINIMUM, "TxDefaultProfile", "A", 60, True))
    assert not outcome.pause_unsupported


def test_limit_ladder_has_no_minimum_rung() -> None:
    """spec/smart-charging.md R-19, R-17: a positive limit tries TxProfile, TxDefault, then W."""
    steps = run_ladder(first_attempt(106, has_transaction=True), ["Rejected", "Rejected", "Rejected"])
    assert [step[:3] for step in steps[:3]] == [
        (Fallback.TX_PROFILE, "TxProfile", "A"),
        (Fallback.TX_DEFAULT, "TxDefaultProfile", "A"),
        (Fallback.POWER, "TxDefaultProfile", "W"),
    ]
    assert isinstance(steps[-1], Outcome)
    assert steps[-1].state == "rejected"


def test_accepted_at_once() -> None:
    """spec/smart-charging.md R-21: applied only when Accepted; 0 is a pause, >0 a limit."""
    assert next_fallback(first_attempt(0, has_transaction=True), "Accepted") == Outcome(
        "paused", Attempt(Fallback.TX_PROFILE, "TxProfile", "A", 0)
    )
    limited = next_fallback(first_attempt(106, has_transaction=False), "Accepted")
    assert limited == Outcome("limited", Attempt(Fallback.TX_DEFAULT, "TxDefaultProfile", "A", 106))


def test_timeout_stops_the_ladder_unanswered() -> None:
    """DESIGN: a timed-out send keeps the old limit reserved (R-87); no rung is skipped on silence."""
    attempt = first_attempt(0, has_transaction=True)
    assert next_fallback(attempt, "timeout") == Outcome("unanswered", attempt)


def test_power_only_charger_uses_watts_throughout() -> None:
    """spec/smart-charging.md R-17: W for Power-only stations; the 6 A rung is sent in W."""
    steps = run_ladder(first_attempt(0, has_transaction=False, units=("W",)), ["Rejected", "Rejected"], units=("W",))
    assert steps[:2] == [
        (Fallback.TX_DEFAULT, "TxDefaultProfile", "W", 0),
        (Fallback.MINIMUM, "TxDefaultProfile", "W", 60),
    ]
    assert steps[-1] == Outcome("rejected", Attempt(Fallback.MINIMUM, "TxDefaultProfile", "W", 60, True))


def test_build_profile_follows_the_attempt() -> None:
    """spec/smart-charging.md R-19, R-43: every rung builds a schema-valid profile for the connector."""
    attempt: Attempt | Outcome = first_attempt(0, has_transaction=True)
    ids = []
    while isinstance(attempt, Attempt):
        profile = build_profile(attempt, 2, NOW, transaction_id=9, phases=1)
        request = through_gateway(2, profile)
        ids.append((request.cs_charging_profiles.charging_profile_id, str(period_limit(request))))
        attempt = next_fallback(attempt, "Rejected")
    assert ids == [(1002, "0.0"), (2002, "0.0"), (2002, "0.0"), (2002, "6.0")]


def test_build_tx_profile_needs_a_transaction() -> None:
    """spec/smart-charging.md R-19: a TxProfile only for a known active transaction."""
    with pytest.raises(ProfileError):
        build_profile(first_attempt(60, has_transaction=True), 1, NOW)
