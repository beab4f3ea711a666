"""R-84 idle reclaim (smart/reclaim.py): when a connector is capped, at what, and when it gets its share back."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from tests.support.plans import OPEN, T0, charging, tx, view
from voltline.domain.site_view import ConnectorRow, SiteView
from voltline.smart.allocation import MIN_TENTHS, Allocation
from voltline.smart.reclaim import Watch, cap_for, caps, observe, watching
from voltline.smart.scheduler import decide, fixed_connectors


def reading(connector: ConnectorRow, amps: int, minute: int, status: str = "Charging") -> ConnectorRow:
    """The connector with a `Current.Import` of `amps` tenths on L1..L3, taken `minute` minutes after T0."""
    return dataclasses.replace(
        connector, status=status, drawn=(amps, amps, amps), drawn_at=T0 + timedelta(minutes=minute)
    )


def three_sharing(*connectors: ConnectorRow) -> SiteView:
    """Three connectors on 32 A, each holding an accepted 10.6 A TxProfile (R-82)."""
    return view(*connectors, profiles=(tx(1, 106), tx(2, 106), tx(3, 106)))


def run(
    readings: list[tuple[int, int, str]], watches: dict[int, Watch] | None = None
) -> tuple[dict[int, Watch], list[dict[int, int]]]:
    """Observe connector 1 reading (amps in tenths, minute, status) once per run; the caps after each run."""
    others = (charging(2, minutes=1), charging(3, minutes=2))
    watches = watches or {}
    seen = []
    for amps, minute, status in readings:
        site = three_sharing(reading(charging(1), amps, minute, status), *others)
        watches = observe(watches, site)
        seen.append(caps(watches))
    return watches, seen


def test_three_low_readings_in_a_row_cap_the_connector_at_1_2_times_its_draw() -> None:
    """R-84: below 60 % of 10.6 A (6.36 A) "for more than 2 samples": the third reading caps,
    at max(6 A, 1.2 x draw)."""
    _, seen = run([(60, 1, "Charging"), (60, 2, "Charging"), (60, 3, "Charging")])
    assert seen == [{}, {}, {1: 72}]
    _, seen = run([(30, 1, "Charging"), (30, 2, "Charging"), (30, 3, "Charging")])
    assert seen[-1] == {1: MIN_TENTHS}, "1.2 x 3.0 A is below the 6 A minimum"


def test_a_reading_at_or_above_60_percent_starts_the_count_again() -> None:
    """R-84: only low readings in a row count; 6.4 A of 10.6 is not low (60 % is 6.36 A)."""
    _, seen = run([(50, 1, "Charging"), (50, 2, "Charging"), (64, 3, "Charging"), (50, 4, "Charging")])
    assert seen == [{}, {}, {}, {}]


def test_a_reading_counts_once_however_many_runs_see_it() -> None:
    """Runs come from events and timers: the same newest reading seen three times is one sample."""
    _, seen = run([(50, 1, "Charging"), (50, 1, "Charging"), (50, 1, "Charging"), (50, 2, "Charging")])
    assert seen == [{}, {}, {}, {}]


def test_a_reading_from_before_the_transaction_does_not_count() -> None:
    """The newest reading may belong to the previous session on the connector."""
    late = dataclasses.replace(charging(1), arrival=T0 + timedelta(minutes=10))
    watches: dict[int, Watch] = {}
    for minute in (1, 2, 3, 4):
        watches = observe(watches, three_sharing(reading(late, 30, minute), charging(2), charging(3)))
    assert caps(watches) == {}


def test_suspended_ev_caps_at_once_and_the_cap_goes_when_the_car_wakes() -> None:
    """R-84: a car in SuspendedEV (full or asleep) is capped without waiting for samples; Charging again restores it."""
    watches, seen = run([(0, 1, "SuspendedEV"), (0, 2, "SuspendedEV"), (0, 3, "Charging")])
    assert seen == [{1: MIN_TENTHS}, {1: MIN_TENTHS}, {}]
    _, seen = run([(100, 1, "SuspendedEV")])
    assert seen == [{1: MIN_TENTHS}], "a reading from before it stopped drawing does not raise the cap"
    assert watches[1].low == 1, "the 0 A read at wake-up is the first low reading of a fresh count"


def test_the_cap_is_sticky_until_the_draw_rises_above_90_percent_of_it() -> None:
    """R-84 ramp-up detection (Open e-Mobility's sticky limitation): 6.4 A under a 7.2 A cap stays
    capped, 6.5 A lifts it."""
    low = [(60, 1, "Charging"), (60, 2, "Charging"), (60, 3, "Charging")]
    watches, seen = run([*low, (60, 4, "Charging"), (64, 5, "Charging")])
    assert seen[2:] == [{1: 72}, {1: 72}, {1: 72}], "6.4 A is not above 90 % of 7.2 A (6.48 A)"
    _, seen = run([(65, 6, "Charging")], watches)
    assert seen == [{}]


def test_a_new_transaction_starts_from_its_full_share() -> None:
    """The watch belongs to the transaction: a new session on the connector is not capped by the old one's."""
    watches, _ = run([(30, 1, "Charging"), (30, 2, "Charging"), (30, 3, "Charging")])
    assert caps(watches) == {1: MIN_TENTHS}
    replugged = dataclasses.replace(charging(1), transaction_id=200, arrival=T0 + timedelta(minutes=5))
    watches = observe(watches, three_sharing(reading(replugged, 30, 6), charging(2), charging(3)))
    assert caps(watches) == {}
    assert watches[1].transaction_id == 200


def test_connectors_that_stop_or_go_offline_are_no_longer_watched() -> None:
    """Only open transactions on chargers we can steer are watched."""
    watches, _ = run([(30, 1, "Charging"), (30, 2, "Charging"), (30, 3, "Charging")])
    offline = view(reading(charging(1), 30, 4), charging(2), offline=(1,), profiles=(tx(1, 106),))
    assert 1 not in observe(watches, offline)
    stopped = view(dataclasses.replace(reading(charging(1), 30, 4), transaction_id=None), charging(2))
    assert 1 not in observe(watches, stopped)


def test_the_surplus_goes_to_the_others_and_the_reason_says_reclaimed() -> None:
    """R-84 + R-82: 32 A, one car capped at 6.0 A: the other two share the remaining 26 A, 13.0 A each."""
    site = three_sharing(charging(1), charging(2, minutes=1), charging(3, minutes=2))
    decision = decide(site, OPEN, fixed_connectors(site), {1: MIN_TENTHS})
    assert [decision.allocations[n] for n in (1, 2, 3)] == [
        Allocation(60, "reclaimed"),
        Allocation(130, "share"),
        Allocation(130, "share"),
    ]
    roomy = decide(site, OPEN, fixed_connectors(site), {1: 120})
    assert roomy.allocations[1] == Allocation(106, "share"), "a cap above the share changes nothing"


def test_runs_keep_watching_while_a_cap_is_set_or_someone_is_short_of_their_maximum() -> None:
    """The controller runs every VOLTLINE_SMART_METER_INTERVAL while reclaim could change something,
    readings or not (the first one may land after the run its event woke)."""
    shares = {n: Allocation(106, "share") for n in (1, 2, 3)}
    assert watching({}, shares)
    assert watching({}, {1: Allocation(60, "share"), 2: Allocation(0, "admission")})
    at_max = {n: Allocation(160, "max") for n in (1, 2, 3)}
    assert not watching({}, at_max), "nobody would get what is reclaimed"
    assert watching({1: Watch(101, cap=60)}, at_max), "a cap to lift on ramp-up"


@given(st.integers(min_value=0, max_value=800))
def test_a_steady_draw_never_lifts_the_cap_it_set(drawn: int) -> None:
    """No flapping: the cap is at least 1.2 x the draw that set it, so that draw is never above 90 % of the cap."""
    cap = cap_for(drawn)
    assert cap >= MIN_TENTHS
    assert drawn * 100 <= cap * 90
    assert cap <= max(MIN_TENTHS, drawn * 12 // 10), "floored, never rounded up"


@given(
    st.integers(min_value=0, max_value=640),
    st.lists(st.one_of(st.none(), st.integers(min_value=60, max_value=320)), min_size=1, max_size=8),
)
def test_caps_keep_every_limit_within_the_capacity_and_outside_0_to_6_amps(
    capacity: int, caps: list[int | None]
) -> None:
    """R-84 with R-82/R-83: whatever the caps, Σ limits <= C, no limit in (0, 6 A), and none above its cap."""
    connectors = [charging(n, minutes=n) for n in range(1, len(caps) + 1)]
    site = view(*connectors, capacity=capacity)
    capped = {n: cap for n, cap in enumerate(caps, start=1) if cap is not None}
    limits = {n: a.limit for n, a in decide(site, OPEN, fixed_connectors(site), capped).allocations.items()}
    assert sum(limits.values()) <= capacity
    assert all(limit == 0 or limit >= MIN_TENTHS for limit in limits.values())
    assert all(limits[n] <= cap for n, cap in capped.items())
