"""Load balancing in tenths of an ampere: spec §7.5 vectors, phases, hierarchy, reservations, steps."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from voltline.smart.allocation import (
    MIN_TENTHS,
    Allocation,
    AllocationError,
    ConnectorLoad,
    GroupNode,
    Step,
    allocate,
    failsafe_limit,
    format_limit,
    plan_steps,
)

T0 = datetime(2025, 1, 15, 18, 0)


def car(
    connector_id: int, max_amps: float, *, group: int = 1, minute: int | None = None, **extra: object
) -> ConnectorLoad:
    """An active connector arriving `minute` minutes after T0 (default: its id)."""
    arrival = T0 + timedelta(minutes=connector_id if minute is None else minute)
    fields: dict[str, object] = {"arrival": arrival, "active": True, **extra}
    return ConnectorLoad(connector_id, group, round(max_amps * 10), **fields)  # type: ignore[arg-type]


def limits(result: dict[int, Allocation]) -> list[str]:
    """The allocation as decimal amperes in connector id order."""
    return [format_limit(result[key].limit) for key in sorted(result)]


VECTORS = [
    pytest.param(32, [16, 16, 16], ["10.6", "10.6", "10.6"], id="C32-3x16-10.6-each-sum-31.8"),
    pytest.param(40, [10, 32, 32], ["10.0", "15.0", "15.0"], id="C40-10-32-32"),
    pytest.param(20, [16, 16, 16], ["6.6", "6.6", "6.6"], id="C20-3x16-6.6-each"),
    pytest.param(16, [16, 16, 16], ["8.0", "8.0", "0.0"], id="C16-3x16-third-paused"),
    pytest.param(5, [16], ["0.0"], id="C5-cannot-reach-6A"),
    pytest.param(63, [32, 32], ["31.5", "31.5"], id="C63-2x32"),
]


@pytest.mark.parametrize(("capacity", "maxes", "expected"), VECTORS)
def test_section_7_5_vectors(capacity: int, maxes: list[int], expected: list[str]) -> None:
    """spec/smart-charging.md R-81, R-82, §7.5: FIFO admission, water-filling, floor once to 0.1 A."""
    result = allocate([GroupNode(1, None, capacity * 10)], [car(i + 1, m) for i, m in enumerate(maxes)])
    assert limits(result) == expected


def test_vector_reasons() -> None:
    """spec/smart-charging.md R-81: the third car of C=16 waits for admission; a 5 A group cannot reach 6 A."""
    crowded = allocate([GroupNode(1, None, 160)], [car(1, 16), car(2, 16), car(3, 16)])
    assert [a.reason for a in crowded.values()] == ["share", "share", "admission"]
    small = allocate([GroupNode(1, None, 50)], [car(1, 16)])
    assert small == {1: Allocation(0, "below_minimum")}
    capped = allocate([GroupNode(1, None, 400)], [car(1, 10), car(2, 32), car(3, 32)])
    assert [a.reason for a in capped.values()] == ["max", "share", "share"]


def test_metered_group_vector() -> None:
    """spec/smart-charging.md §7.2, §7.5: C=25, margin 2, L1 meter 20 A of which EVs 8 A -> EV gets 11.0."""
    group = GroupNode(1, None, 250, meter=(200, 0, 0), margin=20)
    ev = car(1, 32, phases=1, phase="L1", drawn=(80, 0, 0))
    assert allocate([group], [ev]) == {1: Allocation(110, "share")}


def test_metered_group_never_counts_negative_other_load() -> None:
    """spec/smart-charging.md §7.2: max(0, meter - EVs); a meter below the EV sum frees nothing extra."""
    group = GroupNode(1, None, 250, meter=(50, 50, 50), margin=20)
    result = allocate([group], [car(1, 32, drawn=(80, 80, 80))])
    assert result[1] == Allocation(230, "share")


def test_arrival_order_not_input_order_decides_admission() -> None:
    """spec/smart-charging.md R-81: admission is FIFO by transaction start."""
    late, early = car(1, 16, minute=30), car(2, 16, minute=5)
    result = allocate([GroupNode(1, None, 100)], [late, early])
    assert result == {1: Allocation(0, "admission"), 2: Allocation(100, "share")}


def test_gated_idle_and_small_connectors_get_zero() -> None:
    """spec/smart-charging.md R-80, R-40: gated or idle connectors get 0 and free their share."""
    connectors = [
        car(1, 16, blocked="off_peak_closed"),
        ConnectorLoad(2, 1, 160),
        car(3, 5),
        car(4, 32),
    ]
    result = allocate([GroupNode(1, None, 320)], connectors)
    assert result == {
        1: Allocation(0, "gate_closed"),
        2: Allocation(0, "idle"),
        3: Allocation(0, "below_minimum"),
        4: Allocation(320, "max"),
    }


def test_single_phase_connectors_on_different_phases_do_not_compete() -> None:
    """spec/smart-charging.md R-83: a single-phase connector on L2 only counts against L2."""
    connectors = [car(1, 16, phases=1, phase="L1"), car(2, 16, phases=1, phase="L2"), car(3, 16, phases=1, phase="L3")]
    result = allocate([GroupNode(1, None, 160)], connectors)
    assert limits(result) == ["16.0", "16.0", "16.0"]


def test_single_phase_connectors_on_one_phase_share_it() -> None:
    """spec/smart-charging.md R-83: the per-phase budget is the binding constraint."""
    connectors = [car(1, 16, phases=1, phase="L1"), car(2, 16, phases=1, phase="L1"), car(3, 16, phases=1, phase="L2")]
    result = allocate([GroupNode(1, None, 200)], connectors)
    assert limits(result) == ["10.0", "10.0", "16.0"]


def test_unknown_phase_counts_on_every_phase() -> None:
    """spec/smart-charging.md R-83: without per-phase knowledge a connector counts on all phases."""
    connectors = [car(1, 16, phases=1, phase="L1"), car(2, 16, phases=1)]
    result = allocate([GroupNode(1, None, 200)], connectors)
    assert limits(result) == ["10.0", "10.0"]


def test_three_phase_and_single_phase_mix() -> None:
    """spec/smart-charging.md R-83: a 3-phase car is bound by its tightest phase."""
    connectors = [car(1, 32), car(2, 16, phases=1, phase="L1"), car(3, 16, phases=1, phase="L1")]
    result = allocate([GroupNode(1, None, 250)], connectors)
    # L1 holds all three: 250 / 3 = 83; the 3-phase car is held at 8.3 on L2/L3 too.
    assert limits(result) == ["8.3", "8.3", "8.3"]


def test_sub_group_is_capped_by_its_own_capacity() -> None:
    """spec/smart-charging.md §9: a child group's connectors stay within the child's capacity."""
    groups = [GroupNode(1, None, 630), GroupNode(2, 1, 160)]
    connectors = [car(1, 32, group=2), car(2, 32, group=2), car(3, 32, group=1)]
    result = allocate(groups, connectors)
    assert limits(result) == ["8.0", "8.0", "32.0"]


def test_sub_group_gets_what_the_parent_leaves() -> None:
    """spec/smart-charging.md §9: child within the parent's remainder; fairness is per connector."""
    groups = [GroupNode(1, None, 320), GroupNode(2, 1, 320)]
    connectors = [car(1, 32, group=2), car(2, 32, group=2), car(3, 32, group=1)]
    result = allocate(groups, connectors)
    assert limits(result) == ["10.6", "10.6", "10.6"]


def test_deep_hierarchy_respects_every_level() -> None:
    """spec/smart-charging.md §9: grandchild <= child <= root, each on every phase."""
    groups = [GroupNode(1, None, 400), GroupNode(2, 1, 250), GroupNode(3, 2, 100)]
    connectors = [car(1, 32, group=3), car(2, 32, group=3), car(3, 32, group=2), car(4, 32, group=1)]
    result = allocate(groups, connectors)
    # Group 3 (10 A) admits one car; it stops at 10 A, the others share the root's remaining 30 A.
    assert limits(result) == ["10.0", "0.0", "15.0", "15.0"]
    assert result[2] == Allocation(0, "admission")


def test_admission_is_per_subtree() -> None:
    """spec/smart-charging.md R-81: a full sub-group pauses its own late car, not the root's."""
    groups = [GroupNode(1, None, 320), GroupNode(2, 1, 100)]
    connectors = [car(1, 16, group=2), car(2, 16, group=2), car(3, 16, group=1)]
    result = allocate(groups, connectors)
    assert result[2] == Allocation(0, "admission")
    assert limits(result) == ["10.0", "0.0", "16.0"]


def test_offline_connector_keeps_its_reservation() -> None:
    """spec/smart-charging.md R-87, R-44: an offline connector's share is not given to others."""
    connectors = [car(1, 32, online=False, reserved=160), car(2, 32), car(3, 32)]
    result = allocate([GroupNode(1, None, 320)], connectors)
    assert result == {1: Allocation(160, "offline_reserved"), 2: Allocation(80, "share"), 3: Allocation(80, "share")}


def test_offline_reservation_counts_through_the_tree() -> None:
    """spec/smart-charging.md R-87: a reservation in a sub-group comes off the parent too."""
    groups = [GroupNode(1, None, 250), GroupNode(2, 1, 250)]
    connectors = [ConnectorLoad(1, 2, 320, online=False, reserved=200), car(2, 32, group=1)]
    result = allocate(groups, connectors)
    assert result[2] == Allocation(0, "below_minimum")


def test_reservation_between_zero_and_minimum_is_rounded_up() -> None:
    """spec/smart-charging.md R-40, R-87: never a limit in (0, 6 A); reserve conservatively."""
    result = allocate([GroupNode(1, None, 320)], [ConnectorLoad(1, 1, 320, online=False, reserved=30)])
    assert result == {1: Allocation(MIN_TENTHS, "offline_reserved")}


def test_unknown_group_and_cycles_are_errors() -> None:
    """A connector must belong to a known group; the group tree has no cycles."""
    with pytest.raises(AllocationError):
        allocate([GroupNode(1, None, 100)], [car(1, 16, group=9)])
    with pytest.raises(AllocationError):
        allocate([GroupNode(1, 2, 100), GroupNode(2, 1, 100)], [])
    with pytest.raises(AllocationError):
        allocate([GroupNode(1, None, 100)], [car(1, 16), car(1, 16)])


@pytest.mark.parametrize(
    ("capacity", "count", "expected"),
    [(320, 3, 106), (320, 5, 64), (320, 6, 0), (160, 2, 80), (160, 0, 0), (63, 1, 63)],
)
def test_failsafe_limit(capacity: int, count: int, expected: int) -> None:
    """spec/smart-charging.md R-88: floor(C / n), 0 when below 6 A."""
    assert failsafe_limit(capacity, count) == expected


@pytest.mark.parametrize(("tenths", "text"), [(106, "10.6"), (60, "6.0"), (0, "0.0"), (320, "32.0"), (5, "0.5")])
def test_format_limit(tenths: int, text: str) -> None:
    """DESIGN R-82: limits encoded from integer tenths, so 10.6 is exactly "10.6"."""
    assert format_limit(tenths) == text


def test_plan_steps_sends_decreases_first() -> None:
    """spec/smart-charging.md R-85: decreases (pauses first), then increases."""
    installed = {1: 160, 2: 100, 3: 60, 4: 160}
    targets = {1: 106, 2: 160, 3: 106, 4: 0}
    decreases, increases = plan_steps(installed, targets)
    assert decreases == [Step(4, 0), Step(1, 106)]
    assert increases == [Step(2, 160), Step(3, 106)]


def test_plan_steps_hysteresis_applies_to_increases_only() -> None:
    """DESIGN: R-86's 0.5 A skip applies to increases only; decreases are always sent."""
    installed = {1: 100, 2: 100, 3: 100}
    targets = {1: 104, 2: 105, 3: 99}
    decreases, increases = plan_steps(installed, targets)
    assert decreases == [Step(3, 99)]
    assert increases == [Step(2, 105)]


def test_plan_steps_skips_unchanged_and_sends_unknown() -> None:
    """spec/smart-charging.md R-20, R-89: never re-send an unchanged limit; unknown installed -> send."""
    decreases, increases = plan_steps({1: 160, 2: None}, {1: 160, 2: 160, 3: 0})
    assert decreases == [Step(2, 160), Step(3, 0)]
    assert increases == []


def test_plan_steps_resume_from_pause_is_an_increase() -> None:
    """spec/smart-charging.md R-42: resuming re-sends a limit >= 6 A after the decreases."""
    decreases, increases = plan_steps({1: 0, 2: 160}, {1: 80, 2: 80})
    assert decreases == [Step(2, 80)]
    assert increases == [Step(1, 80)]
