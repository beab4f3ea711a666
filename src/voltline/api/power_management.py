"""A site's power management at a glance: the group tree, draw, and each connector's limit and why.

Groups, connectors and draw come from the database (scoped by the caller's team); limits and
reasons from the smart-charging controller's last run (`SmartCharging.snapshot`). Before the
controller has run for the site (or when it is switched off in this process) the tree is still
shown: `computed_at`, `allocated_amps` and each `limit_amps` are null and every reason is
`not_computed`. Amperes are strings with one decimal, formatted from whole tenths (106 -> "10.6");
`limit_amps` is also null for an idle connector (nothing charges, nothing is allocated). A group's
`draw` is its meter's currents when it has one, else the sum over the connectors of its subtree
(R-103, R-104); a phase without data reads "0.0".

`load_management` is the site's flag (DESIGN "Load management") and every group's `balanced`
says the same: false, no group's capacity is shared and a charging connector's limit is its
maximum (reason `max`) unless a gate pauses it; `allocated_amps` is then the sum of what the
connectors are offered, which may exceed the capacity.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import msgspec
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from voltline.api._kit import envelope, path_ref
from voltline.api._routing import Endpoint
from voltline.api.auth import runtime, scope
from voltline.api.meters import meter_totals_of
from voltline.domain.ids import ChargerId, SiteId, TeamId
from voltline.domain.power import PHASES, Usage, sum_usages
from voltline.domain.site_view import DEFAULT_MAX, ChargerRow, ConnectorRow, SiteView
from voltline.domain.timestamps import format_timestamp
from voltline.errors import NotFoundError
from voltline.smart.allocation import format_limit
from voltline.store import chargers, groups, meters, sites
from voltline.store import smart as smart_store
from voltline.store.power_usage import read_usages
from voltline.store.smart import capacity_tenths

NOT_COMPUTED = "not_computed"
UNLIMITED_REASONS = frozenset({"idle"})  # nothing charges: nothing is allocated, no limit to show
INLINE_CONNECTORS = 200  # above this the tree is built in a thread (STYLE: nothing slow on the loop)
_ALL = 1_000_000  # rows: a site's groups and connectors are read whole
_TENTH = Decimal("0.1")


class ChargerRef(msgspec.Struct):
    """The charger a connector belongs to."""

    id: int
    uuid: str
    identity: str


class Draw(msgspec.Struct):
    """Current drawn per phase in amperes (one decimal)."""

    l1: str
    l2: str
    l3: str


class GateView(msgspec.Struct):
    """The site's gate in the last run: open or closed, why, and when it next changes."""

    open: bool
    reason: str
    next_change: str | None


class ConnectorView(msgspec.Struct):
    """A connector: its session, its maximum and the limit the controller gave it, with the reason."""

    id: int
    uuid: str
    charger: ChargerRef
    connector_id: int
    status: str | None
    transaction_id: int | None
    online: bool
    max_amps: str
    limit_amps: str | None
    reason: str
    smart_charging_state: str


class GroupView(msgspec.Struct):
    """A group with its capacity, allocation, draw, connectors and sub-groups."""

    id: int
    uuid: str
    name: str | None
    group_id: int | None
    parent_group_id: int | None
    total_amps: int
    balanced: bool
    capacity_amps: str
    allocated_amps: str | None
    draw: Draw
    meter_id: int | None
    connectors: list[ConnectorView]
    groups: list[GroupView]


class SiteRef(msgspec.Struct):
    """The site shown."""

    id: int
    uuid: str


class PowerManagement(msgspec.Struct):
    """The site's power management: mode, gate, when it was computed, and the group tree from the root."""

    site: SiteRef
    smart_charging: str
    load_management: bool
    gate: GateView | None
    computed_at: str | None
    groups: list[GroupView]


def decimal_amps(amps: Decimal | None) -> str:
    """Amperes with one decimal, half-up; none is "0.0"."""
    return f"{(amps or Decimal(0)).quantize(_TENTH, rounding=ROUND_HALF_UP) + 0:f}"


@dataclass
class Facts:
    """What the database says about the site (everything but the controller's snapshot)."""

    groups: list[RowMapping]
    connectors: list[RowMapping]
    view: SiteView | None
    draws: dict[int, Draw] = field(default_factory=dict)


def gate_view(snapshot: Mapping[str, Any] | None) -> GateView | None:
    """The snapshot's gate (None before the first run)."""
    if snapshot is None:
        return None
    gate = snapshot["gate"]
    return GateView(bool(gate["open"]), str(gate["reason"]), format_timestamp(gate["next_change"]))


def connector_view(
    row: RowMapping, known: ConnectorRow | None, charger: ChargerRow | None, entry: Mapping[str, Any] | None
) -> ConnectorView:
    """A connector from its row, the controller's view of it and its snapshot entry (if any)."""
    reason = NOT_COMPUTED if entry is None else str(entry["reason"])
    limit = None if entry is None or reason in UNLIMITED_REASONS else format_limit(int(entry["limit"]))
    return ConnectorView(
        id=row["id"],
        uuid=row["uuid"],
        charger=ChargerRef(row["charger_id"], row["charger_uuid"], row["charger_identity"]),
        connector_id=row["connector_id"],
        status=row["status"],
        transaction_id=None if known is None else known.transaction_id,
        online=charger.online if charger is not None else row["charger_connection_status"] == "online",
        max_amps=format_limit(known.max if known is not None else DEFAULT_MAX),
        limit_amps=limit,
        reason=reason,
        smart_charging_state=str(entry["state"]) if entry is not None else row["smart_charging_state"],
    )


def placement(facts: Facts) -> dict[int, int]:
    """The group each connector counts in, as the controller places it (R-80).

    Without a view the site has no groups (`load_site_view`), so there is no tree to place in.
    """
    return {} if facts.view is None else {c.id: c.group_id for c in facts.view.connectors}


def _members(facts: Facts, entries: Mapping[int, Mapping[str, Any]]) -> dict[int, list[ConnectorView]]:
    """The connectors of each group (not of its subtree)."""
    known = {} if facts.view is None else {c.id: c for c in facts.view.connectors}
    owners: Mapping[int, ChargerRow] = {} if facts.view is None else facts.view.chargers
    where = placement(facts)
    members: dict[int, list[ConnectorView]] = {}
    for row in facts.connectors:
        shown = connector_view(row, known.get(row["id"]), owners.get(row["charger_id"]), entries.get(row["id"]))
        members.setdefault(where.get(row["id"], 0), []).append(shown)
    return members


def build_tree(facts: Facts, snapshot: Mapping[str, Any] | None, balanced: bool) -> list[GroupView]:
    """The nested group tree from the root(s), with the snapshot's numbers where it has them."""
    entries = {} if snapshot is None else {c["id"]: c for g in snapshot["groups"] for c in g["connectors"]}
    shots = {} if snapshot is None else {g["id"]: g for g in snapshot["groups"]}
    members = _members(facts, entries)
    children: dict[int | None, list[RowMapping]] = {}
    for row in facts.groups:
        children.setdefault(row["group_id"], []).append(row)

    def node(row: RowMapping) -> GroupView:
        shot = shots.get(row["id"])
        return GroupView(
            id=row["id"],
            uuid=row["uuid"],
            name=row["name"],
            group_id=row["group_id"],
            parent_group_id=row["group_id"],
            total_amps=row["total_amps"],
            balanced=balanced,
            capacity_amps=format_limit(int(shot["capacity"]) if shot is not None else capacity_tenths(row)),
            allocated_amps=None if shot is None else format_limit(int(shot["allocated"])),
            draw=facts.draws[row["id"]],
            meter_id=row["meter_id"],
            connectors=members.get(row["id"], []),
            groups=[node(child) for child in children.get(row["id"], [])],
        )

    return [node(row) for row in children.get(None, [])]


def subtree_draws(facts_groups: Sequence[RowMapping], usage_of: Mapping[int, list[Usage]]) -> dict[int, Draw]:
    """R-104: each group's draw summed over the connectors of its subtree (usage_of: group -> usages)."""
    children: dict[int, list[int]] = {}
    for row in facts_groups:
        if row["group_id"] is not None:
            children.setdefault(row["group_id"], []).append(row["id"])

    def collect(group_id: int) -> list[Usage]:
        found = list(usage_of.get(group_id, []))
        for child in children.get(group_id, []):
            found.extend(collect(child))
        return found

    draws = {}
    for row in facts_groups:
        totals = sum_usages(collect(row["id"]))
        draws[row["id"]] = Draw(*(decimal_amps(totals.currents[p]) for p in PHASES))
    return draws


async def _metered_draws(conn: AsyncConnection, team_id: TeamId, group_rows: Sequence[RowMapping]) -> dict[int, Draw]:
    """R-103: the draw of each group with a meter of the team, from that meter."""
    found: dict[int, Draw] = {}
    for row in group_rows:
        if row["meter_id"] is None:
            continue
        try:
            meter = await meters.get_meter(conn, team_id, row["meter_id"])
        except NotFoundError:  # a meter of another team never counts for this group
            continue
        totals = (await meter_totals_of(conn, team_id, [meter]))[meter["id"]]
        found[row["id"]] = Draw(*(decimal_amps(totals.currents[p]) for p in PHASES))
    return found


async def read_facts(conn: AsyncConnection, team_id: TeamId, site_id: SiteId, request: Request) -> Facts:
    """The site's groups, connectors, controller view and draw per group."""
    group_rows = await groups.list_groups(conn, site_id, offset=0, limit=_ALL)
    rows = await chargers.list_site_connectors(conn, site_id, offset=0, limit=_ALL)
    rows = [row for row in rows if row["connector_id"] > 0]
    loaded = await smart_store.load_site_view(conn, site_id, draws=False)  # the draw comes from read_usages
    facts = Facts(group_rows, rows, None if loaded is None else loaded[1], {})
    wanted = [(ChargerId(r["charger_id"]), r["connector_id"], r["phases"]) for r in rows]
    usages = await read_usages(conn, wanted, runtime(request).clock.now())
    where = placement(facts)
    usage_of: dict[int, list[Usage]] = {}
    for row, usage in zip(rows, usages, strict=True):
        usage_of.setdefault(where.get(row["id"], 0), []).append(usage)
    facts.draws = subtree_draws(group_rows, usage_of) | await _metered_draws(conn, team_id, group_rows)
    return facts


async def get_power_management(request: Request) -> Response:
    """Return the site's group tree with capacity, draw and each connector's limit and reason."""
    team_id = scope(request).team_id
    async with runtime(request).db.scan() as conn:  # a big site reads many rows: keep it off the event loop
        site = await sites.get_site(conn, team_id, path_ref(request, "site"))
        facts = await read_facts(conn, team_id, SiteId(site["id"]), request)
    smart = getattr(request.app.state, "smart", None)
    snapshot = None if smart is None else smart.snapshot(site["id"])
    balanced = bool(site["load_management"])
    if len(facts.connectors) > INLINE_CONNECTORS:
        tree = await asyncio.to_thread(build_tree, facts, snapshot, balanced)
    else:
        tree = build_tree(facts, snapshot, balanced)
    body = PowerManagement(
        site=SiteRef(site["id"], site["uuid"]),
        smart_charging=site["smart_charging"],
        load_management=balanced,
        gate=gate_view(snapshot),
        computed_at=None if snapshot is None else format_timestamp(snapshot["computed_at"]),
        groups=tree,
    )
    return envelope(body)


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/v2/teams/{team}/sites/{site}/power-management",
        get_power_management,
        "Get the power management of a site",
        "Sites",
        response=PowerManagement,
    ),
]
