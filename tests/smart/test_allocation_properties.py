"""Property tests for the allocator and the send plan (spec/smart-charging.md §7.3, §9 invariants)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from voltline.smart.allocation import (
    MIN_TENTHS,
    ConnectorLoad,
    GroupNode,
    allocate,
    footprint,
    plan_steps,
)

FAST = settings(max_examples=200, deadline=None)
T0 = datetime(2025, 1, 15, 18, 0)


@st.composite
def group_trees(draw: st.DrawFn) -> list[GroupNode]:
    """A tree of 1..4 groups; each group's parent is an earlier one; some metered."""
    groups: list[GroupNode] = []
    for index in range(draw(st.integers(1, 4))):
        parent = None if index == 0 else draw(st.integers(1, index))
        meter = draw(st.none() | st.tuples(*[st.integers(-50, 400)] * 3))
        groups.append(GroupNode(index + 1, parent, draw(st.integers(0, 800)), meter, draw(st.integers(0, 40))))
    return groups


@st.composite
def connector_sets(draw: st.DrawFn, groups: Sequence[GroupNode]) -> list[ConnectorLoad]:
    """0..8 connectors spread over the groups with every combination of state."""
    connectors = []
    for index in range(draw(st.integers(0, 8))):
        phases = draw(st.sampled_from([1, 3]))
        connectors.append(
            ConnectorLoad(
                id=index + 1,
                group_id=draw(st.sampled_from([group.id for group in groups])),
                max=draw(st.integers(0, 400)),
                phases=phases,
                phase=draw(st.sampled_from([None, "L1", "L2", "L3"])) if phases == 1 else None,
                arrival=T0 + timedelta(minutes=draw(st.integers(0, 5))),
                active=draw(st.booleans()),
                blocked=draw(st.sampled_from([None, None, "off_peak_closed"])),
                online=draw(st.booleans() | st.just(True)),
                reserved=draw(st.sampled_from([0, 30, 60, 160, 320])),
                drawn=draw(st.none() | st.tuples(*[st.integers(0, 200)] * 3)),
            )
        )
    return connectors


@st.composite
def sites(draw: st.DrawFn) -> tuple[list[GroupNode], list[ConnectorLoad]]:
    """A group tree with connectors."""
    groups = draw(group_trees())
    return groups, draw(connector_sets(groups))


def subtree(groups: Sequence[GroupNode], root: int) -> set[int]:
    """The ids of `root` and every group below it."""
    found = {root}
    changed = True
    while changed:
        before = len(found)
        found |= {group.id for group in groups if group.parent_id in found}
        changed = len(found) != before
    return found


def budget(group: GroupNode, members: Sequence[ConnectorLoad], phase: int) -> int:
    """Independent oracle of §7.2: C, less margin and non-EV load when metered."""
    if group.meter is None:
        return max(0, group.capacity)
    evs = sum((c.drawn or (0, 0, 0))[phase] for c in members)
    return max(0, group.capacity - group.margin - max(0, group.meter[phase] - evs))


@FAST
@given(sites())
def test_sum_of_limits_fits_every_group_and_phase(site: tuple[list[GroupNode], list[ConnectorLoad]]) -> None:
    """spec/smart-charging.md §9, R-83, R-87: Σ limits ≤ what each group and phase has left after reservations."""
    groups, connectors = site
    result = allocate(groups, connectors)
    for group in groups:
        members = [c for c in connectors if c.group_id in subtree(groups, group.id)]
        for phase in range(3):
            on_phase = [c for c in members if phase in footprint(c)]
            reserved = sum(result[c.id].limit for c in on_phase if not c.online)
            granted = sum(result[c.id].limit for c in on_phase if c.online)
            assert granted <= max(0, budget(group, members, phase) - reserved)


@FAST
@given(sites())
def test_limits_are_zero_or_at_least_the_minimum(site: tuple[list[GroupNode], list[ConnectorLoad]]) -> None:
    """spec/smart-charging.md R-40, §9: never 0 < limit < 6 A; admitted cars get ≥ 6 A and ≤ their max."""
    groups, connectors = site
    result = allocate(groups, connectors)
    assert set(result) == {c.id for c in connectors}
    for connector in connectors:
        allocation = result[connector.id]
        assert allocation.limit == 0 or allocation.limit >= MIN_TENTHS
        if allocation.reason in {"share", "max"}:
            assert MIN_TENTHS <= allocation.limit <= connector.max
        if allocation.limit == 0:
            assert allocation.reason in {"gate_closed", "idle", "admission", "below_minimum", "offline_reserved"}


@FAST
@given(sites())
def test_blocked_or_idle_online_connector_gets_zero(site: tuple[list[GroupNode], list[ConnectorLoad]]) -> None:
    """spec/smart-charging.md R-80, §9: a closed gate always gives 0."""
    groups, connectors = site
    result = allocate(groups, connectors)
    for connector in connectors:
        if connector.online and (connector.blocked is not None or not connector.active):
            assert result[connector.id].limit == 0


@FAST
@given(sites(), st.randoms(use_true_random=False))
def test_result_does_not_depend_on_input_order(
    site: tuple[list[GroupNode], list[ConnectorLoad]], shuffler: random.Random
) -> None:
    """spec/smart-charging.md §7.3: the allocation is deterministic."""
    groups, connectors = site
    expected = allocate(groups, connectors)
    groups_shuffled, connectors_shuffled = list(groups), list(connectors)
    shuffler.shuffle(groups_shuffled)
    shuffler.shuffle(connectors_shuffled)
    assert allocate(groups_shuffled, connectors_shuffled) == expected


@FAST
@given(st.integers(0, 1000), st.lists(st.integers(0, 400), max_size=8))
def test_single_group_wastes_less_than_a_tenth_per_car(capacity: int, maxes: list[int]) -> None:
    """spec/smart-charging.md R-82: water-filling uses the capacity, losing only the final floor."""
    connectors = [ConnectorLoad(i + 1, 1, m, arrival=T0, active=True) for i, m in enumerate(maxes)]
    result = allocate([GroupNode(1, None, capacity)], connectors)
    admitted = [c for c in connectors if result[c.id].reason in {"share", "max"}]
    total = sum(result[c.id].limit for c in admitted)
    if any(result[c.id].reason == "share" for c in admitted):
        assert capacity - total < len(admitted)
    else:
        assert all(result[c.id].limit == c.max for c in admitted)


limit_values = st.sampled_from([0]) | st.integers(MIN_TENTHS, 320)


@FAST
@given(
    st.lists(st.tuples(limit_values, limit_values), min_size=1, max_size=8),
    st.integers(0, 200),
    st.integers(0, 10),
)
def test_plan_steps_keeps_installed_sum_within_capacity(
    pairs: list[tuple[int, int]], extra: int, hysteresis: int
) -> None:
    """spec/smart-charging.md R-85, §9: decreases then increases keep Σ installed ≤ C at every step."""
    installed = {index: old for index, (old, _) in enumerate(pairs)}
    targets = {index: new for index, (_, new) in enumerate(pairs)}
    capacity = max(sum(installed.values()), sum(targets.values())) + extra
    decreases, increases = plan_steps(installed, targets, hysteresis=hysteresis)
    state = dict(installed)
    for step in decreases:
        assert step.limit < state[step.connector_id]
        state[step.connector_id] = step.limit
        assert sum(state.values()) <= capacity
    for step in increases:
        assert step.limit > state[step.connector_id]
        state[step.connector_id] = step.limit
        assert sum(state.values()) <= capacity
    for index, target in targets.items():
        assert state[index] == target or 0 < target - state[index] < max(1, hysteresis)
