"""The control loop's pure part (smart/scheduler.py): what is in force, what is reserved, what is sent when."""

from __future__ import annotations

from tests.support.plans import OPEN, charging, tx, view
from voltline.domain.site_view import DEFAULT, TX, ChargerRow, ConnectorRow, GroupRow, ProfileRow, SiteView
from voltline.smart.allocation import Allocation
from voltline.smart.gates import Gate
from voltline.smart.scheduler import connector_states, decide, effective, failsafes, fixed_connectors, plan_sends

CLOSED = Gate(False, "off_peak_closed", None)


def test_three_connectors_share_32_amps_and_new_profiles_below_what_may_run_go_first() -> None:
    """spec/smart-charging.md R-82, R-85: 10.6 A each. With nothing known installed a connector may
    draw its maximum, so its first TxProfile is a decrease (phase 1); above its failsafe it is an
    increase and waits for phase 2."""
    site = view(charging(1), charging(2, minutes=1), charging(3, minutes=2))
    decision = decide(site, OPEN, fixed_connectors(site))
    assert [decision.allocations[n].limit for n in (1, 2, 3)] == [106, 106, 106]
    sends = [s for s in plan_sends(site, decision, OPEN) if s.purpose == TX]
    assert [(s.connector, s.limit, s.first) for s in sends] == [(1, 106, True)] * 3
    failsafe = tuple(ProfileRow(n, 0, DEFAULT, 60, "accepted") for n in (1, 2, 3))
    on_failsafe = view(charging(1), charging(2, minutes=1), charging(3, minutes=2), profiles=failsafe)
    sends = [s for s in plan_sends(on_failsafe, decision, OPEN) if s.purpose == TX]
    assert [(s.connector, s.limit, s.first) for s in sends] == [(1, 106, False)] * 3


def test_a_fourth_arrival_sends_the_decreases_first() -> None:
    """R-85: the three 10.6 A go down to 8.0 in phase 1; the newcomer's 8.0 follows in phase 2."""
    site = view(
        charging(1),
        charging(2, minutes=1),
        charging(3, minutes=2),
        charging(4, minutes=3),
        profiles=(tx(1, 106), tx(2, 106), tx(3, 106), ProfileRow(4, 0, DEFAULT, 80, "accepted")),
    )
    sends = plan_sends(site, decide(site, OPEN, fixed_connectors(site)), OPEN)
    phases = {s.charger_id: s.first for s in sends if s.purpose == TX}
    assert phases == {1: True, 2: True, 3: True, 4: False}
    assert {s.limit for s in sends if s.purpose == TX} == {80}


def test_an_unchanged_limit_is_not_sent_again_and_small_increases_wait() -> None:
    """R-20, R-86 (DESIGN: the 0.5 A skip applies to increases only)."""
    site = view(
        charging(1), charging(2, minutes=1), charging(3, minutes=2), profiles=(tx(1, 106), tx(2, 106), tx(3, 102))
    )
    sends = [s for s in plan_sends(site, decide(site, OPEN, fixed_connectors(site)), OPEN) if s.purpose == TX]
    assert sends == []


def test_an_offline_charger_keeps_its_reservation() -> None:
    """R-87: an offline connector reserves max(its last limit, the failsafe); the others share the rest."""
    site = view(charging(1), charging(2, minutes=1), offline=(1,), profiles=(tx(1, 200),))
    fixed = fixed_connectors(site)
    assert fixed == {1: 320}  # no failsafe known: the connector's maximum
    site = view(
        charging(1),
        charging(2, minutes=1),
        offline=(1,),
        profiles=(tx(1, 200), ProfileRow(1, 0, DEFAULT, 160, "accepted")),
    )
    decision = decide(site, OPEN, fixed_connectors(site))
    assert decision.allocations[1].limit == 200
    assert decision.allocations[2].limit == 120


def test_an_unacknowledged_decrease_keeps_the_old_limit_reserved() -> None:
    """DESIGN: a decrease that timed out keeps the old limit reserved until acknowledged."""
    site = view(charging(1), charging(2, minutes=1), profiles=(tx(1, 80, "timeout", reserved=200),))
    assert effective(site, site.connectors[0]) == 200
    decision = decide(site, OPEN, fixed_connectors(site, failed={1}))
    assert decision.allocations[1].limit == 200
    assert decision.allocations[2].limit == 120


def test_failsafe_is_capacity_over_connectors_or_zero_below_6_amps() -> None:
    """R-88: floor(C / n), 0 when that is below 6 A."""
    assert failsafes(view(*(charging(n) for n in range(1, 6)))) == dict.fromkeys(range(1, 6), 64)
    assert failsafes(view(*(charging(n) for n in range(1, 7)))) == dict.fromkeys(range(1, 7), 0)


def test_a_closed_gate_pauses_sessions_and_idle_connectors() -> None:
    """R-41, R-56: TxProfile 0 for a session and TxDefault 0 for an idle connector, both in phase 1."""
    idle = ConnectorRow(2, 2, 1, 1, "Available")
    site = view(charging(1), idle, profiles=(tx(1, 160),))
    decision = decide(site, CLOSED, fixed_connectors(site))
    sends = [s for s in plan_sends(site, decision, CLOSED) if s.connector == 1]
    assert {(s.charger_id, s.purpose, s.limit, s.first) for s in sends} == {(1, TX, 0, True), (2, DEFAULT, 0, True)}
    assert connector_states(site, decision, CLOSED) == {1: "paused", 2: "paused"}


def test_a_charger_that_cannot_pause_is_held_at_6_amps_and_shown_rejected() -> None:
    """R-43: a pause the charger refuses keeps 6 A reserved and the connector `rejected`."""
    connector = charging(1)
    site = SiteView(
        site_id=1,
        groups=(GroupRow(1, None, 320),),
        chargers={1: ChargerRow(1, "CP1", True, pause_unsupported=True)},
        connectors=(connector,),
    )
    decision = decide(site, CLOSED, fixed_connectors(site))
    assert decision.allocations[1].limit == 60
    assert connector_states(site, decision, CLOSED) == {1: "rejected"}


def test_the_txprofile_of_a_finished_transaction_is_cleared() -> None:
    """§7.4: on stop the TxProfile is cleared."""
    site = view(ConnectorRow(1, 1, 1, 1, "Finishing"), profiles=(tx(1, 106),))
    sends = plan_sends(site, decide(site, OPEN, fixed_connectors(site)), OPEN)
    assert [(s.purpose, s.limit) for s in sends if s.connector == 1] == [(TX, None)]


def test_a_finished_transactions_txprofile_is_cleared_before_the_next_one_is_set() -> None:
    """§7.4, R-20: both TxProfiles use id 1000 + n, so the clear of the old one must go out first.

    A new session that starts paused (gate closed) puts both sends in phase 1 (R-85).
    """
    site = view(charging(1), profiles=(ProfileRow(1, 1, TX, 106, "accepted", None, 42),))
    sends = [s for s in plan_sends(site, decide(site, CLOSED, fixed_connectors(site)), CLOSED) if s.purpose == TX]
    assert [(s.limit, s.transaction_id, s.first) for s in sends] == [(None, 42, True), (0, 101, True)]


def test_a_charger_without_smart_charging_is_sent_nothing_and_holds_its_draw() -> None:
    """R-87 (an unsteerable charger keeps what it may draw), DESIGN `rejected` state: NotImplemented flags it."""
    dumb = ChargerRow(2, "CP2", True, profiles_unsupported=True)
    site = view(charging(1), charging(2, minutes=1), capacity=480)
    site = SiteView(site.site_id, site.groups, {**site.chargers, 2: dumb}, site.connectors, site.profiles)
    decision = decide(site, OPEN, fixed_connectors(site))
    assert fixed_connectors(site) == {2: 320}  # nothing known installed: its maximum
    assert decision.allocations[1].limit == 160
    assert all(s.charger_id != 2 for s in plan_sends(site, decision, OPEN))
    assert connector_states(site, decision, OPEN) == {1: "limited", 2: "rejected"}


def test_a_stale_group_meter_holds_its_connectors_at_the_minimum() -> None:
    """§7.6 / R-87 "stale = overload": a metered group without a fresh reading gives at most 6 A, until it reports.

    With a fresh reading the same group is balanced dynamically (§7.2): 32 A less 2 A margin less
    4 A of non-EV load (meter 20 A, EVs 16 A) leaves 26 A, 13.0 A each.
    """
    site = view(charging(1), charging(2, minutes=1))
    drawing = tuple(
        ConnectorRow(
            c.id, c.charger_id, 1, 1, "Charging", transaction_id=c.transaction_id, arrival=c.arrival, drawn=(80, 80, 80)
        )
        for c in site.connectors
    )
    fresh = SiteView(1, (GroupRow(1, None, 320, (200, 200, 200)),), site.chargers, drawing)
    assert [decide(fresh, OPEN, {}).allocations[n] for n in (1, 2)] == [Allocation(130, "share")] * 2
    stale = SiteView(1, (GroupRow(1, None, 320, None, meter_stale=True),), site.chargers, drawing)
    decision = decide(stale, OPEN, {})
    assert [decision.allocations[n] for n in (1, 2)] == [Allocation(60, "meter_stale")] * 2
    assert [s.limit for s in plan_sends(stale, decision, OPEN) if s.purpose == TX] == [60, 60]
