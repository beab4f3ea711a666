"""A site's `load_management` flag and the boot gate in the control loop's pure part (smart/scheduler.py).

DESIGN "Load management": off, no group is balanced and no failsafe is installed; a connector
charges at its rating, paused only by the gates. Nothing is sent to a charger whose
BootNotification was not Accepted in its current connection.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from voltline.domain.site_view import DEFAULT, TX, ChargerRow, ConnectorRow, GroupRow, ProfileRow, SiteView
from voltline.smart.gates import Gate
from voltline.smart.scheduler import connector_states, decide, fixed_connectors, plan_sends, snapshot

OPEN = Gate(True, "disabled", None)
CLOSED = Gate(False, "off_peak_closed", None)
T0 = datetime(2025, 3, 31, 12)


def site(
    *connectors: ConnectorRow, balanced: bool, profiles: tuple[ProfileRow, ...] = (), unbooted: tuple[int, ...] = ()
) -> SiteView:
    """A 32 A root group with one charger per connector (charger id = connector id)."""
    chargers = {
        c.charger_id: ChargerRow(c.charger_id, f"CP{c.charger_id}", True, booted=c.charger_id not in unbooted)
        for c in connectors
    }
    return SiteView(
        site_id=1,
        groups=(GroupRow(1, None, 320),),
        chargers=chargers,
        connectors=connectors,
        profiles={(p.charger_id, p.connector, p.purpose): p for p in profiles},
        balanced=balanced,
    )


def charging(n: int) -> ConnectorRow:
    """Connector `n` (of charger `n`, rated 32 A) with transaction `100 + n`, started `n` minutes after T0."""
    return ConnectorRow(n, n, 1, 1, "Charging", max=320, transaction_id=100 + n, arrival=T0 + timedelta(minutes=n))


def six_on_32_amps(**options: object) -> SiteView:
    """The test vector: six charging connectors of 32 A on a 32 A root group."""
    return site(*(charging(n) for n in range(1, 7)), **options)  # type: ignore[arg-type]


def sends_of(view: SiteView, gate: Gate = OPEN) -> list[tuple[int, int, str, int | None, bool]]:
    """(charger, connector, purpose, limit, first) of every send the view calls for."""
    decision = decide(view, gate, fixed_connectors(view))
    return [(s.charger_id, s.connector, s.purpose, s.limit, s.first) for s in plan_sends(view, decision, gate)]


def test_without_load_management_six_32_amp_connectors_on_32_amps_each_get_their_rating_and_no_profile() -> None:
    """DESIGN "Load management" off: no §7 sharing, no R-88 failsafe; every connector may draw 32 A."""
    view = six_on_32_amps(balanced=False)
    decision = decide(view, OPEN, fixed_connectors(view))
    assert [(decision.allocations[n].limit, decision.allocations[n].reason) for n in range(1, 7)] == [(320, "max")] * 6
    assert sends_of(view) == []
    assert connector_states(view, decision, OPEN) == dict.fromkeys(range(1, 7), "none")


def test_with_load_management_the_same_six_get_the_section_7_shares_and_failsafes() -> None:
    """spec/smart-charging.md R-81, R-82, R-88 as before: five at 6.4 A, the sixth paused, failsafe 0 A."""
    view = six_on_32_amps(balanced=True)
    decision = decide(view, OPEN, fixed_connectors(view))
    assert [decision.allocations[n].limit for n in range(1, 7)] == [64] * 5 + [0]
    sends = sends_of(view)
    assert {(c, limit) for c, _, purpose, limit, _ in sends if purpose == DEFAULT} == {(n, 0) for n in range(1, 7)}
    shares = sorted((c, limit) for c, _, purpose, limit, _ in sends if purpose == TX)
    assert shares == [(1, 64), (2, 64), (3, 64), (4, 64), (5, 64), (6, 0)]


def test_switching_load_management_off_clears_the_failsafes_and_the_balancing_txprofiles() -> None:
    """DESIGN "Load management": off after on, the next run clears what balancing installed."""
    installed = tuple(ProfileRow(n, 0, DEFAULT, 0, "accepted") for n in range(1, 7)) + tuple(
        ProfileRow(n, 1, TX, 64 if n < 6 else 0, "accepted", None, 100 + n) for n in range(1, 7)
    )
    sends = sends_of(six_on_32_amps(balanced=False, profiles=installed))
    assert sorted(sends) == sorted(
        [(n, 0, DEFAULT, None, False) for n in range(1, 7)] + [(n, 1, TX, None, False) for n in range(1, 7)]
    )


def test_without_load_management_the_gate_still_pauses_and_opening_it_clears_the_pause() -> None:
    """R-41, R-56 with load management off: TxProfile 0 and an idle TxDefault 0 while closed; cleared when open."""
    idle = ConnectorRow(2, 2, 1, 1, "Available", max=320)
    view = site(charging(1), idle, balanced=False)
    assert sorted(sends_of(view, CLOSED)) == [(1, 1, TX, 0, True), (2, 1, DEFAULT, 0, True)]
    paused = site(
        charging(1),
        idle,
        balanced=False,
        profiles=(ProfileRow(1, 1, TX, 0, "accepted", None, 101), ProfileRow(2, 1, DEFAULT, 0, "accepted")),
    )
    assert sorted(sends_of(paused, OPEN)) == [(1, 1, TX, None, False), (2, 1, DEFAULT, None, False)]


def test_without_load_management_a_session_that_began_while_paused_is_released_when_the_gate_opens() -> None:
    """R-41 then R-12: the idle pause (the connector's TxDefault 0) would hold a session no TxProfile
    overrides, so with load management off it is cleared when the gate opens."""
    paused = site(charging(1), balanced=False, profiles=(ProfileRow(1, 1, DEFAULT, 0, "accepted"),))
    assert sends_of(paused, CLOSED) == [(1, 1, TX, 0, True)]
    assert sends_of(paused, OPEN) == [(1, 1, DEFAULT, None, False)]


def test_without_load_management_a_capped_connector_gets_a_txprofile_of_its_cap() -> None:
    """DESIGN: per-connector caps still apply with load management off (`_capped_max`; R-84's cap here)."""
    view = site(charging(1), balanced=False)
    decision = decide(view, OPEN, fixed_connectors(view), caps={1: 100})
    assert decision.allocations[1].limit == 100
    assert [(s.purpose, s.limit) for s in plan_sends(view, decision, OPEN)] == [(TX, 100)]


def test_without_load_management_a_stale_meter_does_not_hold_connectors_at_6_amps() -> None:
    """§7.6 "stale = overload" guards a shared capacity; with nothing shared the meter is not used."""
    view = replace(site(charging(1), balanced=False), groups=(GroupRow(1, None, 320, None, meter_stale=True),))
    assert decide(view, OPEN, fixed_connectors(view)).allocations[1].limit == 320


def test_a_charger_that_has_not_booted_is_sent_nothing_and_keeps_its_reservation() -> None:
    """DESIGN "Load management": nothing before an Accepted boot; meanwhile it counts as offline (R-87)."""
    view = site(charging(1), charging(2), balanced=True, unbooted=(1,))
    assert fixed_connectors(view) == {1: 320}  # nothing of ours known: its maximum
    sends = sends_of(view)
    assert sends and all(charger != 1 for charger, *_ in sends)
    decision = decide(view, OPEN, fixed_connectors(view))
    assert 1 not in connector_states(view, decision, OPEN)


def test_the_snapshot_says_whether_the_groups_are_balanced() -> None:
    """The power-management picture: `balanced` on the run and on each group."""
    for balanced in (True, False):
        view = six_on_32_amps(balanced=balanced)
        decision = decide(view, OPEN, fixed_connectors(view))
        picture = snapshot(view, decision, OPEN, {}, T0)
        assert picture["balanced"] is balanced
        assert [group["balanced"] for group in picture["groups"]] == [balanced]
