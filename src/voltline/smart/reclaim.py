"""Idle reclaim (spec/smart-charging.md R-84): a car that takes much less than its share gives the rest back.

A connector is watched while its transaction is open on a charger we can steer. Each run of the
site looks at its newest `Current.Import` reading (`ConnectorRow.drawn`, stamped `drawn_at`); a
reading counts once, and only when it is newer than the transaction's start.

* A connector in `SuspendedEV` (the car is full or asleep) is capped at once, at 6 A (it takes
  nothing now, so max(6 A, 1.2 x 0)).
* A reading below 60 % of the limit in force counts as low; any other reading starts the count
  again. The third low reading in a row ("more than 2 samples") caps the connector.
* The cap is max(6 A, draw x 1.2), floored to a tenth, and sticky: it stays while the draw stays at
  or under 90 % of it, and the connector gets its full share again at the first reading above that
  (the car ramps up), or, for a `SuspendedEV` cap, once the status leaves `SuspendedEV`.

Because the cap is at least 1.2 x the draw that set it, a steady draw sits at most at 1/1.2 = 83 %
of the cap and cannot lift it: no flapping without a real ramp-up. The surplus goes to the other
connectors through the allocator (the cap is the connector's `max` there). The watches live in the
controller's memory: after a restart every connector starts from its full share again, which is
what the allocation gives without R-84 (never more than the capacity).

Pure: the controller keeps the watches between runs and passes them back in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from voltline.domain.site_view import ConnectorRow, SiteView
from voltline.smart.allocation import MIN_TENTHS, Allocation
from voltline.smart.scheduler import effective, is_active

SUSPENDED_EV = "SuspendedEV"
LOW_PERCENT = 60  # a reading below this share of the limit in force is low
LOW_READINGS = 3  # low readings in a row that cap a connector ("more than 2 samples")
HEADROOM_PERCENT = 120  # the cap over the draw that set it
RAMP_PERCENT = 90  # a reading above this share of the cap gives the full share back
WORTH_WATCHING = frozenset({"share", "admission"})  # someone who would get what is reclaimed


@dataclass(frozen=True, slots=True)
class Watch:
    """One connector's idle-reclaim state for its open transaction (tenths of an ampere)."""

    transaction_id: int
    seen_at: datetime | None = None  # the `drawn_at` of the newest reading counted
    low: int = 0
    cap: int | None = None
    suspended: bool = False  # the cap was set because the connector was in SuspendedEV


def observe(watches: Mapping[int, Watch], view: SiteView) -> dict[int, Watch]:
    """The watches after this run's readings and statuses; connectors no longer charging are dropped."""
    found: dict[int, Watch] = {}
    for connector in view.connectors:
        if connector.transaction_id is None or not is_active(connector):
            continue
        if not view.chargers[connector.charger_id].steerable:
            continue
        watch = watches.get(connector.id)
        if watch is None or watch.transaction_id != connector.transaction_id:
            watch = Watch(connector.transaction_id)
        found[connector.id] = _next(watch, connector, view)
    return found


def caps(watches: Mapping[int, Watch]) -> dict[int, int]:
    """The capped connectors and their caps."""
    return {connector_id: watch.cap for connector_id, watch in watches.items() if watch.cap is not None}


def watching(watches: Mapping[int, Watch], allocations: Mapping[int, Allocation]) -> bool:
    """True when another run should look at the readings soon: a cap is set, or one could help someone.

    Not whether readings exist yet: the first reading of a session may reach the store after the
    run that its event woke, and nothing else would wake the site again.
    """
    if any(watch.cap is not None for watch in watches.values()):
        return True
    return any(allocation.reason in WORTH_WATCHING for allocation in allocations.values())


def cap_for(drawn: int) -> int:
    """max(6 A, drawn x 1.2), floored to a tenth."""
    return max(MIN_TENTHS, drawn * HEADROOM_PERCENT // 100)


def _next(watch: Watch, connector: ConnectorRow, view: SiteView) -> Watch:
    if connector.status == SUSPENDED_EV:
        if watch.cap is not None:
            return watch
        # Full or asleep: it takes nothing now, whatever an older reading says (max(6 A, 1.2 x 0)).
        return Watch(watch.transaction_id, watch.seen_at, 0, cap_for(0), suspended=True)
    if watch.suspended:
        watch = Watch(watch.transaction_id, watch.seen_at)  # the car woke up: its full share again
    if not _new_reading(watch, connector):
        return watch
    drawn = _peak(connector)
    if watch.cap is not None:
        if drawn * 100 > watch.cap * RAMP_PERCENT:
            return Watch(watch.transaction_id, connector.drawn_at)
        return Watch(watch.transaction_id, connector.drawn_at, 0, watch.cap)
    in_force = effective(view, connector)
    low = in_force is not None and in_force > 0 and drawn * 100 < in_force * LOW_PERCENT
    count = watch.low + 1 if low else 0
    if count >= LOW_READINGS:
        return Watch(watch.transaction_id, connector.drawn_at, 0, cap_for(drawn))
    return Watch(watch.transaction_id, connector.drawn_at, count)


def _new_reading(watch: Watch, connector: ConnectorRow) -> bool:
    at = connector.drawn_at
    if at is None or connector.drawn is None:
        return False
    if connector.arrival is not None and at < connector.arrival:
        return False  # from before this transaction
    return watch.seen_at is None or at > watch.seen_at


def _peak(connector: ConnectorRow) -> int:
    return max(connector.drawn) if connector.drawn is not None else 0
