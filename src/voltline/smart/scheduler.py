"""What each connector of a site should get now, and which profiles to send in which order (spec §9).

The controller (services/smart_control/controller.py) loads a `SiteView` from the store, asks this module for the
allocation and the profile sends, and carries them out. Everything here is pure.

What a charger runs with, as far as we know (R-12, §2.7): the TxProfile of the running
transaction, else the connector's own TxDefaultProfile (stack level 1: R-41 pause, R-43
fallback), else the charger-wide TxDefaultProfile on connector 0 (stack level 0: R-88 failsafe),
else nothing of ours (the connector's maximum). Each stored profile row says how sure we are:

* `accepted`: its `limit` is in force;
* `pending`, `timeout`, `stale` (sent but unanswered, or a reconnect that may have lost it):
  something up to `reserved` is in force (the higher of the old and the new limit; NULL = we do
  not know, so the connector's maximum) — DESIGN: an unacknowledged decrease keeps the old limit;
* `rejected`: the charger refused `limit`; `reserved` is what of this purpose was in force
  before (NULL = nothing of this purpose, look at the next one).

Sends come in two phases (R-85): first pauses and decreases of a known installed limit, then,
once those are acknowledged, new profiles and increases. Unchanged limits are never re-sent
(R-20); increases below 0.5 A are skipped (R-86, increases only).

A site's `load_management` flag (`SiteView.balanced`, DESIGN "Load management") decides whether
its groups are balanced. Off: no capacity is shared and no failsafe is installed (R-88 does not
apply); each charging connector may draw its rating, less only what the gate (R-50, R-66) or a
per-connector cap takes (`_capped_max`), so a TxProfile is sent only to pause or cap it, and
the failsafes and TxProfiles installed while the site was balanced are cleared.

A connector's charge-limit cap (DESIGN "v3 API", smart/charge_limits.py) is enforced here on a
managed site (`SiteView.managed`: balanced or gated): it is the connector's max for the allocator,
so its limit is min(allocation, cap) with reason `charge_limit`, and what it leaves of a share goes
to the others as R-82's water-filling gives it (R-30: a hard cap whose unused share goes to the
other connectors); Σ limits ≤ C holds as before. A cap of 0 pauses (R-41, idle connectors too).

Nothing is sent to a charger whose BootNotification was not Accepted in its current connection
(`ChargerRow.booted`, DESIGN "Load management"): until then it counts as offline (R-87).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from voltline.domain.site_view import (
    ACTIVE_EXCLUDED,
    DEFAULT,
    DEFAULT_MAX,
    TX,
    ConnectorRow,
    ProfileRow,
    SiteView,
)
from voltline.smart.allocation import (
    MIN_TENTHS,
    Allocation,
    ConnectorLoad,
    GroupNode,
    allocate,
    failsafe_limit,
    plan_steps,
    unbalanced,
)
from voltline.smart.allocation import (
    allocation as shared_allocation,
)
from voltline.smart.gates import Gate


@dataclass(frozen=True, slots=True)
class Send:
    """One profile to set (limit in tenths) or clear (limit None) on a charger, in phase 1 or 2."""

    charger_id: int
    connector: int
    purpose: str
    limit: int | None
    first: bool
    transaction_id: int | None = None
    phases: int = 3
    connector_max: int = DEFAULT_MAX


@dataclass(frozen=True, slots=True)
class Decision:
    """The allocation of a run: limits, the connectors held at a fixed current, refused pauses."""

    allocations: Mapping[int, Allocation]
    fixed: Mapping[int, int]
    pause_refused: frozenset[int]


def in_force(row: ProfileRow | None) -> tuple[bool, int | None]:
    """(this row decides, limit in force or None = unknown) for one stored profile."""
    if row is None:
        return False, None
    if row.status == "accepted":
        return True, row.limit
    if row.status == "rejected":
        return row.reserved is not None, row.reserved
    return True, row.reserved


def tx_row(view: SiteView, connector: ConnectorRow) -> ProfileRow | None:
    """The TxProfile row of the connector's running transaction, if any."""
    row = view.profiles.get((connector.charger_id, connector.number, TX))
    if row is None or connector.transaction_id is None or row.transaction_id != connector.transaction_id:
        return None
    return row


def effective(view: SiteView, connector: ConnectorRow) -> int | None:
    """The limit the connector runs with as far as we know (R-12); None = unknown (its maximum)."""
    rows = [
        tx_row(view, connector),
        view.profiles.get((connector.charger_id, connector.number, DEFAULT)),
        view.profiles.get((connector.charger_id, 0, DEFAULT)),
    ]
    for row in rows:
        decided, limit = in_force(row)
        if decided:
            return limit
    return None


def worst(view: SiteView, connector: ConnectorRow) -> int:
    """The most the connector may draw by our records (R-87)."""
    limit = effective(view, connector)
    return connector.max if limit is None else limit


def is_active(connector: ConnectorRow) -> bool:
    """R-80: an open transaction in a status that may draw current."""
    return connector.transaction_id is not None and connector.status not in ACTIVE_EXCLUDED


def is_stuck(view: SiteView, connector: ConnectorRow) -> bool:
    """True when the charger refused our profiles for this transaction and no fallback holds (R-43)."""
    row = tx_row(view, connector)
    if row is None or row.status != "rejected":
        return False
    fallback = view.profiles.get((connector.charger_id, connector.number, DEFAULT))
    return fallback is None or fallback.status != "accepted"


def group_nodes(view: SiteView) -> list[GroupNode]:
    """The allocator's group tree."""
    return [GroupNode(g.id, g.parent_id, g.capacity, g.meter) for g in view.groups]


def failsafes(view: SiteView) -> dict[int, int]:
    """R-88 per charger: the lowest floor(C / n) over the groups above its connectors (tenths)."""
    parents = {g.id: g.parent_id for g in view.groups}
    capacity = {g.id: g.capacity for g in view.groups}
    count: dict[int, int] = {}
    for connector in view.connectors:
        for group_id in _path(parents, connector.group_id):
            count[group_id] = count.get(group_id, 0) + 1
    result: dict[int, int] = {}
    for connector in view.connectors:
        path = _path(parents, connector.group_id)
        limit = min(failsafe_limit(capacity[g], count[g]) for g in path)
        result[connector.charger_id] = min(limit, result.get(connector.charger_id, limit))
    return result


def _path(parents: Mapping[int, int | None], group_id: int) -> list[int]:
    path: list[int] = []
    current: int | None = group_id
    while current is not None and current in parents and current not in path:
        path.append(current)
        current = parents[current]
    return path


def fixed_connectors(view: SiteView, failed: Iterable[int] = ()) -> dict[int, int]:
    """Connectors we cannot steer now and what they may draw: offline (R-87), refusing, unanswered."""
    failed_ids = set(failed)
    fixed: dict[int, int] = {}
    for connector in view.connectors:
        charger = view.chargers[connector.charger_id]
        if not charger.reachable:
            failsafe = effective_failsafe(view, connector.charger_id, connector.max)
            fixed[connector.id] = max(worst(view, connector), failsafe)
        elif charger.profiles_unsupported or is_stuck(view, connector) or connector.id in failed_ids:
            fixed[connector.id] = worst(view, connector)
    return fixed


def effective_failsafe(view: SiteView, charger_id: int, maximum: int) -> int:
    """The charger-wide TxDefault in force (R-88), or `maximum` when none is known."""
    decided, limit = in_force(view.profiles.get((charger_id, 0, DEFAULT)))
    return limit if decided and limit is not None else maximum


def decide(view: SiteView, gate: Gate, fixed: Mapping[int, int], caps: Mapping[int, int] | None = None) -> Decision:
    """Allocate the site (R-80..R-83, R-87); a pause a charger cannot do keeps it at 6 A (R-43).

    `caps` are R-84 idle-reclaim caps (smart/reclaim.py): such a connector gets at most its cap,
    and the rest of its share goes to the others.
    """
    caps = caps or {}
    nodes = group_nodes(view)
    share = allocate if view.balanced else unbalanced
    allocations = _marked(view, share(nodes, _loads(view, gate, fixed, caps)), caps)
    refused = frozenset(
        c.id
        for c in view.connectors
        if c.id not in fixed
        and view.chargers[c.charger_id].pause_unsupported
        and is_active(c)
        and allocations[c.id].limit == 0
    )
    if not refused:
        return Decision(allocations, dict(fixed), refused)
    held = {**fixed, **dict.fromkeys(refused, MIN_TENTHS)}
    return Decision(_marked(view, share(nodes, _loads(view, gate, held, caps)), caps), held, refused)


def under_stale_meter(view: SiteView) -> frozenset[int]:
    """Connectors below a group whose meter reading is missing or stale.

    evcc's "stale = overload" (spec §7.6, R-87): without a fresh reading the non-EV load is
    unknown, so these connectors get at most the 6 A minimum until the meter reports again.
    """
    stale = {g.id for g in view.groups if g.meter_stale}
    if not stale:
        return frozenset()
    parents = {g.id: g.parent_id for g in view.groups}
    return frozenset(c.id for c in view.connectors if stale.intersection(_path(parents, c.group_id)))


def _marked(view: SiteView, allocations: dict[int, Allocation], caps: Mapping[int, int]) -> dict[int, Allocation]:
    """A connector held at its max only by a charge-limit cap, a stale meter or a reclaim cap says so."""
    stale = under_stale_meter(view)
    for connector in view.connectors:
        allocation = allocations[connector.id]
        if _charge_limited(view, connector, allocation):
            allocations[connector.id] = shared_allocation(allocation.limit, "charge_limit")
            continue
        if allocation.reason != "max" or allocation.limit >= connector.max:
            continue
        if connector.id in stale and allocation.limit == MIN_TENTHS:
            allocations[connector.id] = shared_allocation(allocation.limit, "meter_stale")
        elif allocation.limit == caps.get(connector.id):
            allocations[connector.id] = shared_allocation(allocation.limit, "reclaimed")
    return allocations


def _charge_limited(view: SiteView, connector: ConnectorRow, allocation: Allocation) -> bool:
    """True when a session's limit is its charge-limit cap (DESIGN "v3 API": min(allocation, cap)).

    The cap is the connector's max for the allocator (`_capped_max`): it ends at its cap ("max") or,
    for a pause (cap 0, below any minimum), at 0 ("below_minimum" when balanced).
    """
    cap = connector_cap(view, connector)
    return (
        cap is not None
        and cap < connector.max
        and is_active(connector)
        and allocation.reason in ("max", "below_minimum")
        and allocation.limit == cap
    )


def connector_cap(view: SiteView, connector: ConnectorRow) -> int | None:
    """The connector's charge-limit cap when the controller enforces it (a managed site), else None."""
    return connector.cap if view.managed else None


def _loads(view: SiteView, gate: Gate, fixed: Mapping[int, int], caps: Mapping[int, int]) -> list[ConnectorLoad]:
    blocked = None if gate.open else gate.reason
    stale = under_stale_meter(view) if view.balanced else frozenset()  # a meter only matters for sharing
    return [
        ConnectorLoad(
            id=c.id,
            group_id=c.group_id,
            max=_capped_max(c, c.id in stale, _lowest(caps.get(c.id), connector_cap(view, c))),
            phases=c.phases,
            arrival=c.arrival,
            active=is_active(c),
            blocked=blocked,
            online=c.id not in fixed,
            reserved=fixed.get(c.id, 0),
            drawn=c.drawn,
        )
        for c in view.connectors
    ]


def _lowest(*caps: int | None) -> int | None:
    """The lowest of the caps given (None: no cap)."""
    found = [cap for cap in caps if cap is not None]
    return min(found) if found else None


def _capped_max(connector: ConnectorRow, stale: bool, cap: int | None) -> int:
    """The connector's max for the allocator: 6 A under a stale meter (§7.6), at most its cap.

    Every per-connector cap (R-84 reclaim; a cap set on the connector) goes through here, so with
    load management off a capped connector gets a TxProfile of its cap, an uncapped one none.
    """
    limit = min(connector.max, MIN_TENTHS) if stale else connector.max
    return limit if cap is None else min(limit, cap)


def plan_sends(view: SiteView, decision: Decision, gate: Gate, *, hysteresis: int = 5) -> list[Send]:
    """The profiles to set or clear on online chargers, each marked for phase 1 or 2 (R-85)."""
    online = [c for c in view.connectors if view.chargers[c.charger_id].steerable]
    sends = _failsafe_sends(view)
    for connector in online:
        sends += _stale_sends(view, connector)  # before a new transaction's TxProfile of the same id
    sends += _transaction_sends(view, decision, hysteresis)
    for connector in online:
        sends += _idle_sends(view, connector, gate)
    return sends


def _failsafe_sends(view: SiteView) -> list[Send]:
    if not view.balanced:
        return _failsafe_clears(view)
    sends = []
    for charger_id, limit in failsafes(view).items():
        if not view.chargers[charger_id].steerable:
            continue
        row = view.profiles.get((charger_id, 0, DEFAULT))
        if _unchanged(row, limit):
            continue
        decided, current = in_force(row)
        first = not decided or current is None or limit < current
        sends.append(Send(charger_id, 0, DEFAULT, limit, first))
    return sends


def _failsafe_clears(view: SiteView) -> list[Send]:
    """Load management off: no failsafe (R-88 balances a group), so the ones installed are cleared."""
    return [
        Send(charger_id, 0, DEFAULT, None, False)
        for charger_id, connector, purpose in view.profiles
        if connector == 0 and purpose == DEFAULT and charger_id in view.chargers and view.chargers[charger_id].steerable
    ]


def _unchanged(row: ProfileRow | None, limit: int) -> bool:
    return row is not None and row.limit == limit and row.status in ("accepted", "rejected")


def _transaction_sends(view: SiteView, decision: Decision, hysteresis: int) -> list[Send]:
    candidates = {
        c.id: c
        for c in view.connectors
        if view.chargers[c.charger_id].steerable
        and is_active(c)
        and (c.id not in decision.fixed or c.id in decision.pause_refused)
    }
    installed: dict[int, int | None] = {}
    targets: dict[int, int] = {}
    sends = []
    for connector_id, connector in candidates.items():
        row = tx_row(view, connector)
        target = decision.allocations[connector_id].limit
        if not view.balanced and target >= connector.max:
            sends += _uncapped(view, connector, row)
            continue
        if row is not None and row.status == "rejected" and row.limit == target:
            continue  # refused already for this transaction; the ladder ran
        installed[connector_id] = row.limit if row is not None and row.status == "accepted" else None
        targets[connector_id] = target
    decreases, increases = plan_steps(installed, targets, hysteresis=hysteresis)
    for step in decreases + increases:
        connector = candidates[step.connector_id]
        # Below what the connector may run with now (its TxProfile, else a TxDefault, else its
        # maximum: a new session on its failsafe) is a decrease and goes in phase 1.
        first = step.limit == 0 or step.limit < worst(view, connector)
        sends.append(
            Send(
                connector.charger_id,
                connector.number,
                TX,
                step.limit,
                first,
                connector.transaction_id,
                connector.phases,
                connector.max,
            )
        )
    return sends


def _uncapped(view: SiteView, connector: ConnectorRow, row: ProfileRow | None) -> list[Send]:
    """Load management off and nothing limits the connector: it runs at its rating, without a profile of ours.

    Its own TxDefault goes too: an idle pause from before the session (R-41) or a fallback rung
    (R-43) would otherwise hold it, as no TxProfile overrides it (R-12).
    """
    sends = []
    if row is not None:
        sends.append(Send(connector.charger_id, connector.number, TX, None, False, connector.transaction_id))
    if (connector.charger_id, connector.number, DEFAULT) in view.profiles:
        sends.append(Send(connector.charger_id, connector.number, DEFAULT, None, False))
    return sends


def _idle_sends(view: SiteView, connector: ConnectorRow, gate: Gate) -> list[Send]:
    """R-41: an idle connector waits paused (TxDefault 0) while the gate is closed or its charge limit is 0;
    cleared when it opens (or the limit is lifted)."""
    if connector.transaction_id is not None:
        return []
    row = view.profiles.get((connector.charger_id, connector.number, DEFAULT))
    if not gate.open or connector_cap(view, connector) == 0:  # a charge limit of 0 pauses it too
        if _unchanged(row, 0):
            return []
        return [Send(connector.charger_id, connector.number, DEFAULT, 0, True, phases=connector.phases)]
    if row is None:
        return []
    return [Send(connector.charger_id, connector.number, DEFAULT, None, False)]


def _stale_sends(view: SiteView, connector: ConnectorRow) -> list[Send]:
    """§7.4: the TxProfile of a finished transaction is cleared."""
    row = view.profiles.get((connector.charger_id, connector.number, TX))
    if row is None or row.transaction_id == connector.transaction_id:
        return []
    return [Send(connector.charger_id, connector.number, TX, None, True, row.transaction_id)]


def finished_rows(view: SiteView) -> list[ProfileRow]:
    """TxProfile rows whose transaction is no longer open on their connector."""
    open_tx = {(c.charger_id, c.number): c.transaction_id for c in view.connectors}
    return [
        row
        for row in view.profiles.values()
        if row.purpose == TX and open_tx.get((row.charger_id, row.connector)) != row.transaction_id
    ]


def connector_states(view: SiteView, decision: Decision, gate: Gate) -> dict[int, str]:
    """`smart_charging_state` per online connector: none, limited, paused or rejected (DESIGN)."""
    states: dict[int, str] = {}
    for connector in view.connectors:
        charger = view.chargers[connector.charger_id]
        if not charger.reachable:
            continue
        if charger.profiles_unsupported or is_stuck(view, connector) or connector.id in decision.pause_refused:
            states[connector.id] = "rejected"
        elif connector.transaction_id is None:
            states[connector.id] = "none" if gate.open and connector_cap(view, connector) != 0 else "paused"
        else:
            limit = decision.allocations[connector.id].limit
            states[connector.id] = "paused" if limit == 0 else "limited" if limit < connector.max else "none"
    return states


def snapshot(
    view: SiteView, decision: Decision, gate: Gate, states: Mapping[int, str], now: datetime
) -> dict[str, Any]:
    """A read-only picture of the run: the gate, the group tree with capacity and each connector's limit."""
    parents = {g.id: g.parent_id for g in view.groups}
    allocated: dict[int, int] = {}
    for connector in view.connectors:
        for group_id in _path(parents, connector.group_id):
            allocated[group_id] = allocated.get(group_id, 0) + decision.allocations[connector.id].limit
    groups = [
        {
            "id": g.id,
            "parent_id": g.parent_id,
            "capacity": g.capacity,
            "meter": None if g.meter is None else list(g.meter),
            "meter_stale": g.meter_stale,
            "allocated": allocated.get(g.id, 0),
            "balanced": view.balanced,
            "connectors": [_connector_entry(view, c, decision, states) for c in view.connectors if c.group_id == g.id],
        }
        for g in view.groups
    ]
    gate_entry = {"open": gate.open, "reason": gate.reason, "next_change": gate.next_change}
    return {
        "site_id": view.site_id,
        "computed_at": now,
        "gate": gate_entry,
        "balanced": view.balanced,
        "groups": groups,
    }


def _connector_entry(
    view: SiteView, connector: ConnectorRow, decision: Decision, states: Mapping[int, str]
) -> dict[str, Any]:
    allocation = decision.allocations[connector.id]
    charger = view.chargers[connector.charger_id]
    reason = allocation.reason
    if reason == "offline_reserved" and charger.reachable:
        reason = "reserved"  # online but not steerable now: no smart charging, a refused pause, an unanswered cut
    return {
        "id": connector.id,
        "charger_id": charger.id,
        "identity": charger.identity,
        "connector": connector.number,
        "transaction_id": connector.transaction_id,
        "online": charger.online,
        "max": connector.max,
        "limit": allocation.limit,
        "reason": reason,
        "state": states.get(connector.id, connector.state),
    }
