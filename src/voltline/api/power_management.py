"""A site's power management at a glance: the group tree, draw, and each connector's limit and why.

Groups, connectors and draw come from the database (scoped by the caller's team); limits and
reasons from the picture the smart-charging controller stored after its last run of the site
(services/power_management.py), whichever process ran it. Before the controller has run for the
site the tree is still shown: `computed_at`, `allocated_amps` and each `limit_amps` are null and every reason is
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
from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from voltline.api._kit import envelope, path_ref
from voltline.api._routing import Endpoint
from voltline.api.auth import runtime, scope, team_member
from voltline.domain.site_view import DEFAULT_MAX, ChargerRow, ConnectorRow
from voltline.domain.timestamps import format_timestamp
from voltline.services import power_management
from voltline.services.power_management import Facts, placement
from voltline.smart.allocation import format_limit

NOT_COMPUTED = "not_computed"
UNLIMITED_REASONS = frozenset({"idle"})  # nothing charges: nothing is allocated, no limit to show
INLINE_CONNECTORS = 200  # above this the tree is built in a thread (STYLE: nothing slow on the loop)


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


def gate_view(snapshot: Mapping[str, Any] | None) -> GateView | None:
    """The snapshot's gate (None before the first run)."""
    if snapshot is None:
        return None
    gate = snapshot["gate"]
    return GateView(bool(gate["open"]), str(gate["reason"]), format_timestamp(gate["next_change"]))


def connector_view(
    row: Mapping[Any, Any], known: ConnectorRow | None, charger: ChargerRow | None, entry: Mapping[str, Any] | None
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
    children: dict[int | None, list[Mapping[Any, Any]]] = {}
    for row in facts.groups:
        children.setdefault(row["group_id"], []).append(row)

    def node(row: Mapping[Any, Any]) -> GroupView:
        shot = shots.get(row["id"])
        return GroupView(
            id=row["id"],
            uuid=row["uuid"],
            name=row["name"],
            group_id=row["group_id"],
            parent_group_id=row["group_id"],
            total_amps=row["total_amps"],
            balanced=balanced,
            capacity_amps=format_limit(int(shot["capacity"]) if shot is not None else facts.capacities[row["id"]]),
            allocated_amps=None if shot is None else format_limit(int(shot["allocated"])),
            draw=Draw(*facts.draws[row["id"]]),
            meter_id=row["meter_id"],
            connectors=members.get(row["id"], []),
            groups=[node(child) for child in children.get(row["id"], [])],
        )

    return [node(row) for row in children.get(None, [])]


async def get_power_management(request: Request) -> Response:
    """Return the site's group tree with capacity, draw and each connector's limit and reason."""
    shown = await power_management.get_power_management(
        runtime(request), scope(request).team_id, path_ref(request, "site")
    )
    site, facts, snapshot = shown.site, shown.facts, shown.picture
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
        guard=team_member,
    ),
]
