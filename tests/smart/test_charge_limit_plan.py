"""Charge-limit caps in the control loop's pure part (smart/scheduler.py) and their rules (smart/charge_limits.py).

DESIGN "v3 API": on a managed site a capped connector gets min(allocation, cap) with reason
`charge_limit`; what it leaves goes to the others through R-82's water-filling (R-30: a hard cap,
its unused share to the other connectors), so Σ limits ≤ C holds; 0 pauses (R-41). Elsewhere the
controller ignores the cap (a TxDefaultProfile of its own carries it, services/charge_limits.py).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from voltline.domain.site_view import DEFAULT, TX, ChargerRow, ConnectorRow, GroupRow, SiteView
from voltline.errors import ValidationError
from voltline.smart.charge_limits import (
    cap_profile,
    cap_tenths,
    controller_manages,
    profile_limit,
    watts_to_tenths,
)
from voltline.smart.gates import Gate
from voltline.smart.scheduler import connector_states, decide, fixed_connectors, plan_sends

OPEN = Gate(True, "disabled", None)
T0 = datetime(2025, 3, 31, 12)


def charging(n: int, cap: int | None = None) -> ConnectorRow:
    """Connector `n` of charger `n`, rated 32 A, charging since T0 + n minutes, with an optional cap (tenths)."""
    return ConnectorRow(
        n, n, 1, 1, "Charging", max=320, transaction_id=100 + n, arrival=T0 + timedelta(minutes=n), cap=cap
    )


def site(*connectors: ConnectorRow, balanced: bool = True, managed: bool = True, capacity: int = 320) -> SiteView:
    """A root group of `capacity` tenths with one charger per connector."""
    chargers = {c.charger_id: ChargerRow(c.charger_id, f"CP{c.charger_id}", True) for c in connectors}
    return SiteView(1, (GroupRow(1, None, capacity),), chargers, connectors, {}, balanced=balanced, managed=managed)


def limits(view: SiteView, gate: Gate = OPEN) -> list[tuple[int, str]]:
    """(limit, reason) per connector."""
    decision = decide(view, gate, fixed_connectors(view))
    return [(a.limit, a.reason) for _, a in sorted(decision.allocations.items())]


def test_a_cap_below_the_share_is_the_limit_and_its_rest_goes_to_the_others() -> None:
    """R-82 over three 32 A connectors on 32 A gives 10.6 A each; capped at 8 A one gets 8.0 `charge_limit`,
    the others 12.0 (R-30); Σ = 32.0 ≤ C. A cap above the share leaves the share (min(allocation, cap))."""
    view = site(charging(1, cap=80), charging(2), charging(3))
    assert limits(view) == [(80, "charge_limit"), (120, "share"), (120, "share")]
    assert sum(limit for limit, _ in limits(view)) <= 320
    assert limits(site(charging(1, cap=160), charging(2), charging(3))) == [(106, "share")] * 3


def test_a_cap_of_0_pauses_a_session_and_an_idle_connector_waits_paused() -> None:
    """R-41: a session capped at 0 gets a TxProfile of 0 (phase 1, R-85), reason `charge_limit`, state
    `paused`; an idle connector capped at 0 gets its TxDefaultProfile 0 so a new session starts paused."""
    idle = ConnectorRow(2, 2, 1, 1, "Available", max=320, cap=0)
    view = site(charging(1, cap=0), idle)
    decision = decide(view, OPEN, fixed_connectors(view))
    assert (decision.allocations[1].limit, decision.allocations[1].reason) == (0, "charge_limit")
    sends = [(s.charger_id, s.purpose, s.limit, s.first) for s in plan_sends(view, decision, OPEN)]
    assert (1, TX, 0, True) in sends
    assert (2, DEFAULT, 0, True) in sends
    assert connector_states(view, decision, OPEN) == {1: "paused", 2: "paused"}


def test_without_load_management_a_gated_site_sends_the_cap_and_an_unmanaged_one_ignores_it() -> None:
    """DESIGN "Load management" off but a gate configured: the controller manages the site and sends a
    TxProfile of the cap (reason `charge_limit`). With neither, it leaves the cap to its TxDefaultProfile."""
    gated = site(charging(1, cap=160), charging(2), balanced=False, managed=True)
    assert limits(gated) == [(160, "charge_limit"), (320, "max")]
    decision = decide(gated, OPEN, fixed_connectors(gated))
    assert [(s.charger_id, s.purpose, s.limit) for s in plan_sends(gated, decision, OPEN)] == [(1, TX, 160)]
    unmanaged = replace(gated, managed=False)
    assert limits(unmanaged) == [(320, "max"), (320, "max")]
    decision = decide(unmanaged, OPEN, fixed_connectors(unmanaged))
    assert plan_sends(unmanaged, decision, OPEN) == []


def test_who_enforces_a_cap() -> None:
    """The controller for a balanced or gated site while smart control runs; otherwise the cap's own profile."""
    assert controller_manages(True, {"load_management": True, "smart_charging": "disabled"})
    assert controller_manages(True, {"load_management": False, "smart_charging": "off_peak"})
    assert not controller_manages(True, {"load_management": False, "smart_charging": "disabled"})
    assert not controller_manages(False, {"load_management": True, "smart_charging": "off_peak"})
    assert not controller_manages(True, None)


def test_limits_are_floored_to_a_tenth_and_watts_use_230_volts_and_the_phases() -> None:
    """R-16: floor to 0.1 A; W / (230 x phases); R-40: 0 < limit < 6 A refused; 0 pauses."""
    assert [cap_tenths(v) for v in (0, 6, 16.09, "32", Decimal("6.05"))] == [0, 60, 160, 320, 60]
    assert watts_to_tenths(11000, 3) == 159
    assert watts_to_tenths(3680, 1) == 160
    for bad in (0.01, 5.99, -0.1):
        with pytest.raises(ValidationError) as caught:
            cap_tenths(bad)
        assert list(caught.value.errors) == ["limit"]
    with pytest.raises(ValidationError):
        watts_to_tenths(1000, 1)  # 4.3 A: R-40
    schedule = {"charging_rate_unit": "W", "charging_schedule_period": [{"start_period": 0, "limit": 7360}]}
    assert profile_limit({"charging_schedule": schedule}, 1) == 320
    assert profile_limit({"charging_schedule": schedule}, 3) == 106
    amps = {"charging_schedule": {"charging_rate_unit": "A", "charging_schedule_period": [{"limit": 0}]}}
    assert profile_limit(amps, 3) == 0


def test_the_cap_profile_never_shares_an_id_with_the_controller() -> None:
    """R-20: the controller's ids are 1000+n, 2000+n and 3000; a cap's TxDefaultProfile is 4000+n."""
    profile = cap_profile(2, 160, 1, 3, T0)
    assert (profile["chargingProfileId"], profile["chargingProfilePurpose"], profile["stackLevel"]) == (
        4002,
        "TxDefaultProfile",
        1,
    )
    assert profile["chargingSchedule"]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 16.0, "numberPhases": 3}
    ]
