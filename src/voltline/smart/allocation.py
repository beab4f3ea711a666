"""Load balancing a site's group tree in whole tenths of an ampere (spec/smart-charging.md §7).

Every current here is an integer count of tenths of an ampere per phase (DESIGN: "compute in
whole tenths and floor once at the end"), so 10.6 A is 106 and `format_limit(106)` is "10.6".

The rule `allocate` implements, in order:

1. Budgets (§7.2, R-83). Every group has one budget per phase: its `capacity`, less, when a
   meter is attached, `margin + max(0, meter_p - Σ EV drawn on p)` (the non-EV load; the EVs
   summed are the connectors of the group's whole subtree, as the meter sees them all). A
   connector draws on the phases of its footprint: a 3-phase connector on L1..L3, a 1-phase
   connector with a known `phase` on that phase only, a 1-phase connector of unknown phase on
   all three (conservative). What it draws counts against its own group and every ancestor.
2. Fixed connectors. An offline connector keeps `reserved` (R-87, rounded up to `minimum` if it
   lies between 0 and the minimum) and its share is given to nobody: the reservation comes off
   every budget on its path first. Use the same for any connector we cannot steer right now
   (an unacknowledged decrease, a pause the charger refuses): pass it with `online=False` and
   `reserved` = what it may draw. `reserved` of an online connector is ignored. Inactive
   connectors get 0 "idle", gated ones 0 "gate_closed" (R-80), and a connector whose `max` is
   below the minimum 0 "below_minimum".
3. Admission (R-81). The rest, first come first served by `arrival` (then id), are admitted while
   `minimum` more still fits on every phase budget of every group on their path. The others get
   0: "below_minimum" when the minimum would not fit even alone, else "admission".
4. Sharing (R-82). Progressive filling, the hierarchical form of water-filling: all admitted
   connectors rise together one common level at a time; a connector stops at its `max`, and all
   connectors on a (group, phase) budget stop when that budget has less left than one tenth for
   each of them. Each step rises by the largest whole number of tenths every budget allows, so
   the level is floored once, never rounded up: 32 A over three 16 A connectors gives 10.6 A
   each (Σ 31.8), not 10.6/10.7/10.7. Fairness is per connector across the whole tree, and a
   sub-group simply caps its own connectors: a sub-group gets min(own capacity, what its
   parent leaves) because its connectors are bounded by both budgets at once. Since all
   admitted minimums fit together, every admitted connector ends at or above the minimum.

The result is deterministic: it depends on the inputs only, never on their order.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from voltline.domain.power import PHASES
from voltline.errors import VoltlineError

MIN_TENTHS = 60

Key = tuple[int, int]  # (group id, phase index): one per-phase budget


class AllocationError(VoltlineError):
    """The group tree or the connectors handed to the allocator are inconsistent."""


@dataclass(frozen=True, slots=True)
class GroupNode:
    """One load-balancing group: per-phase capacity in tenths, optional meter reading."""

    id: int
    parent_id: int | None
    capacity: int
    meter: tuple[int, int, int] | None = None
    margin: int = 20


@dataclass(frozen=True, slots=True)
class ConnectorLoad:
    """One connector as the allocator sees it: rating, phases, session and reachability."""

    id: int
    group_id: int
    max: int
    phases: int = 3
    phase: str | None = None
    arrival: datetime | None = None
    active: bool = False
    blocked: str | None = None
    online: bool = True
    reserved: int = 0
    drawn: tuple[int, int, int] | None = None


@dataclass(frozen=True, slots=True)
class Allocation:
    """A connector's limit in tenths (0 or at least the minimum) and why."""

    limit: int
    reason: str


@dataclass(frozen=True, slots=True)
class Step:
    """One limit to send to one connector."""

    connector_id: int
    limit: int


def allocate(
    groups: Sequence[GroupNode], connectors: Sequence[ConnectorLoad], *, minimum: int = MIN_TENTHS
) -> dict[int, Allocation]:
    """Each connector's limit: gates, reservations, FIFO admission and water-filling (R-80..R-83, R-87)."""
    paths = _group_paths(groups)
    _check_connectors(connectors, paths)
    slack = _budgets(groups, connectors, paths)
    result: dict[int, Allocation] = {}
    for connector in connectors:
        if not connector.online:
            amount = _reservation(connector.reserved, minimum)
            _take(slack, _keys(connector, paths), amount)
            result[connector.id] = allocation(amount, "offline_reserved")
    waiting = [c for c in connectors if c.id not in result]
    for connector in waiting:
        reason = _ineligible(connector, minimum)
        if reason is not None:
            result[connector.id] = allocation(0, reason)
    eligible = [c for c in waiting if c.id not in result]
    admitted = _admit(eligible, paths, slack, minimum, result)
    levels = _fill({c.id: (c.max, _keys(c, paths)) for c in admitted}, slack)
    for connector in admitted:
        limit = levels[connector.id]
        reason = "max" if limit == connector.max else "share"
        result[connector.id] = allocation(limit, reason) if limit >= minimum else allocation(0, "below_minimum")
    return dict(sorted(result.items()))


def unbalanced(_groups: Sequence[GroupNode], loads: Sequence[ConnectorLoad]) -> dict[int, Allocation]:
    """Load management off (DESIGN): no capacity is shared; a charging connector gets its (capped) maximum.

    The gate still pauses (R-80: 0 "gate_closed"), an idle connector gets 0 "idle", and one we
    cannot steer keeps what it may draw (R-87), as `allocate` does; nothing is admitted or shared.
    """
    result: dict[int, Allocation] = {}
    for load in loads:
        if not load.online:
            result[load.id] = allocation(load.reserved, "offline_reserved")
        elif not load.active:
            result[load.id] = allocation(0, "idle")
        elif load.blocked is not None:
            result[load.id] = allocation(0, "gate_closed")
        else:
            result[load.id] = allocation(load.max, "max")
    return dict(sorted(result.items()))


def failsafe_limit(capacity: int, connectors: int, *, minimum: int = MIN_TENTHS) -> int:
    """R-88: floor(C / n) in tenths, or 0 when that is below the minimum (or there is no connector)."""
    if connectors <= 0:
        return 0
    share = max(0, capacity) // connectors
    return share if share >= minimum else 0


@functools.lru_cache(maxsize=4096)
def allocation(limit: int, reason: str) -> Allocation:
    """The (immutable, shared) Allocation of a limit and reason: 1,000 connectors at "8.0 share" are one object."""
    return Allocation(limit, reason)


def plan_steps(
    installed: Mapping[int, int | None], targets: Mapping[int, int], *, hysteresis: int = 5
) -> tuple[list[Step], list[Step]]:
    """Split target limits into (decreases incl. pauses, increases) to send in that order (R-85, R-86, R-20)."""
    decreases: list[Step] = []
    unknown: list[Step] = []
    increases: list[Step] = []
    for connector_id in sorted(targets):
        target = targets[connector_id]
        current = installed.get(connector_id)
        if current is None:
            # Unknown state is accounted at its worst case (its reservation), so any target is a decrease.
            unknown.append(Step(connector_id, target))
        elif target < current:
            decreases.append(Step(connector_id, target))
        elif target - current >= max(1, hysteresis):
            increases.append(Step(connector_id, target))
    decreases.sort(key=lambda step: (step.limit, step.connector_id))
    return decreases + unknown, increases


def format_limit(tenths: int) -> str:
    """The decimal text of a limit in tenths: 106 -> "10.6", 60 -> "6.0", 0 -> "0.0"."""
    if tenths < 0:
        raise AllocationError(f"A limit cannot be negative: {tenths}")
    whole, tenth = divmod(tenths, 10)
    return f"{whole}.{tenth}"


def footprint(connector: ConnectorLoad) -> tuple[int, ...]:
    """The phase indexes a connector draws on (R-83): its phase when single-phase and known, else all."""
    if connector.phases == 1 and connector.phase in PHASES:
        return (PHASES.index(connector.phase),)
    return (0, 1, 2)


def _group_paths(groups: Sequence[GroupNode]) -> dict[int, tuple[int, ...]]:
    by_id = {group.id: group for group in groups}
    if len(by_id) != len(groups):
        raise AllocationError("Duplicate group ids")
    paths: dict[int, tuple[int, ...]] = {}
    for group in groups:
        path = [group.id]
        parent = group.parent_id
        while parent is not None and parent in by_id:
            if parent in path:
                raise AllocationError(f"Group {group.id} is part of a cycle")
            path.append(parent)
            parent = by_id[parent].parent_id
        paths[group.id] = tuple(path)
    return paths


def _check_connectors(connectors: Sequence[ConnectorLoad], paths: Mapping[int, tuple[int, ...]]) -> None:
    if len({connector.id for connector in connectors}) != len(connectors):
        raise AllocationError("Duplicate connector ids")
    for connector in connectors:
        if connector.group_id not in paths:
            raise AllocationError(f"Connector {connector.id} is in unknown group {connector.group_id}")


def _keys(connector: ConnectorLoad, paths: Mapping[int, tuple[int, ...]]) -> tuple[Key, ...]:
    return tuple((group, phase) for group in paths[connector.group_id] for phase in footprint(connector))


def _budgets(
    groups: Sequence[GroupNode], connectors: Sequence[ConnectorLoad], paths: Mapping[int, tuple[int, ...]]
) -> dict[Key, int]:
    drawn: dict[Key, int] = {}
    for connector in connectors:
        for group_id in paths[connector.group_id]:
            for phase, amount in enumerate(connector.drawn or (0, 0, 0)):
                drawn[group_id, phase] = drawn.get((group_id, phase), 0) + amount
    slack: dict[Key, int] = {}
    for group in groups:
        for phase in range(3):
            available = group.capacity
            if group.meter is not None:
                other_load = max(0, group.meter[phase] - drawn.get((group.id, phase), 0))
                available -= group.margin + other_load
            slack[group.id, phase] = max(0, available)
    return slack


def _reservation(reserved: int, minimum: int) -> int:
    if reserved <= 0:
        return 0
    return max(reserved, minimum)


def _take(slack: dict[Key, int], keys: Iterable[Key], amount: int) -> None:
    for key in keys:
        slack[key] -= amount


def _ineligible(connector: ConnectorLoad, minimum: int) -> str | None:
    if not connector.active:
        return "idle"
    if connector.blocked is not None:
        return "gate_closed"
    if connector.max < minimum:
        return "below_minimum"
    return None


def _admit(
    eligible: Sequence[ConnectorLoad],
    paths: Mapping[int, tuple[int, ...]],
    slack: Mapping[Key, int],
    minimum: int,
    result: dict[int, Allocation],
) -> list[ConnectorLoad]:
    left = dict(slack)
    admitted: list[ConnectorLoad] = []
    for connector in sorted(eligible, key=_arrival_order):
        keys = _keys(connector, paths)
        if all(left[key] >= minimum for key in keys):
            _take(left, keys, minimum)
            admitted.append(connector)
        elif any(slack[key] < minimum for key in keys):
            result[connector.id] = allocation(0, "below_minimum")
        else:
            result[connector.id] = allocation(0, "admission")
    return admitted


def _arrival_order(connector: ConnectorLoad) -> tuple[bool, datetime, int]:
    return (connector.arrival is None, connector.arrival or datetime.min, connector.id)


def _fill(claimants: Mapping[int, tuple[int, tuple[Key, ...]]], slack: Mapping[Key, int]) -> dict[int, int]:
    """Progressive filling: raise every unfrozen claimant together, freeze at its max or a full budget."""
    left = dict(slack)
    members: dict[Key, list[int]] = {}
    for claimant, (_, keys) in claimants.items():
        for key in keys:
            members.setdefault(key, []).append(claimant)
    count = {key: len(ids) for key, ids in members.items()}
    by_max = sorted((cap, claimant) for claimant, (cap, _) in claimants.items())
    frozen: dict[int, int] = {}
    level = 0
    cursor = 0
    while len(frozen) < len(claimants):
        while by_max[cursor][1] in frozen:
            cursor += 1
        rise = min([by_max[cursor][0] - level] + [left[key] // n for key, n in count.items() if n])
        level += rise
        for key, n in count.items():
            left[key] -= rise * n
        full = [key for key, n in count.items() if n and left[key] < n]
        reached = []
        for cap, claimant in by_max[cursor:]:
            if cap > level:
                break
            reached.append(claimant)
        for claimant in reached + [c for key in full for c in members[key]]:
            if claimant not in frozen:
                frozen[claimant] = level
                for key in claimants[claimant][1]:
                    count[key] -= 1
    return frozen
