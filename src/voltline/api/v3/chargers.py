"""v3 chargers (spec volttime-v3 §3.2-§3.5): the user's chargers by uuid, with every §3.2 field.

Sources of the fields: identity, reference, statuses and errors as v2; `vendor_id`, `model` and
`firmware_version` from the BootNotification; `server` = the gateway process holding the socket
(DESIGN "Cluster"; null while offline); `last_connection_at`, `last_disconnection_at`,
`last_heartbeat_at` as the gateway records them (store/ocpp_state.py); `blocked` = the lock
setting (v3 `settings/lock`, services/charger_settings.py); `max_current` = the largest of its
connectors' limits, each the connector's cap (v3 `actions/charge-limit`) or else its rating;
`licenses` all true (Voltline licenses nothing); `permissions` from the caller's membership
(services/reach.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from voltline.api._contract import Contract
from voltline.api._kit import PAGE_QUERY, UUID_PATTERN, envelope, json_body, page_response, page_window
from voltline.api._routing import Endpoint
from voltline.api.auth import authenticated, runtime
from voltline.api.v3._common import V3, charger_team, user_of
from voltline.domain.ids import TeamId
from voltline.domain.timestamps import format_timestamp
from voltline.errors import ValidationError
from voltline.services import charge_limits, charger_settings, chargers, reach
from voltline.services.reach import Permissions

CREATE_RULES = {
    "identity": "required|string|max:45|regex:ocpp_identity",
    "team_uuid": "nullable|string|max:36",
    "site_uuid": "nullable|string|max:36",
}
UPDATE_RULES = {"reference": "nullable|string|max:255"}
CREATE = Contract("V3CreateChargerBody", "Body of POST /api/v3/chargers.", CREATE_RULES)
UPDATE = Contract("V3UpdateChargerBody", "Body of PUT /api/v3/chargers/{charger}.", UPDATE_RULES)
SITE_INVALID = "The selected site uuid is invalid."
POWER_TYPES = {1: "AC_1_PHASE", 3: "AC_3_PHASE"}


class V3Licenses(msgspec.Struct):
    """The charger's licences: Voltline licenses nothing, so every feature is on."""

    smart: bool
    pro: bool


class V3Model(msgspec.Struct):
    """The charger's vendor and model from its BootNotification."""

    vendor: str | None
    name: str | None
    is_dc: bool


class V3Permissions(msgspec.Struct):
    """What the caller may do with the object."""

    basic: bool
    sensitive: bool
    full: bool


class V3ConnectorResource(msgspec.Struct):
    """A connector as v3 shows it (spec v3 §3.2), by its OCPP number `connector_id`."""

    id: int
    charger_id: int
    connector_id: int
    status: str | None
    error: str | None
    error_info: str | None
    vendor_id: str | None
    vendor_error_code: str | None
    max_amperage: int | None
    max_voltage: int | None
    standard: str | None
    format: str | None
    power_type: str | None
    phase_rotation: str | None
    created_at: str
    updated_at: str


class V3ChargerResource(msgspec.Struct):
    """A charger in a list (spec v3 §3.3: no pincode, no connectors)."""

    uuid: str
    id: int
    identity: str
    reference: str | None
    connection_status: str
    status: str | None
    error: str | None
    error_info: str | None
    vendor_id: str | None
    vendor_error_code: str | None
    firmware_version: str | None
    parsed_firmware_version: str | None
    server: str | None
    last_connection_at: str | None
    last_disconnection_at: str | None
    last_heartbeat_at: str | None
    setup_pending: bool
    setup_completed: bool
    blocked: bool
    max_current: int | None
    created_at: str
    updated_at: str
    licenses: V3Licenses
    model: V3Model
    permissions: V3Permissions


class V3ChargerDetailResource(V3ChargerResource):
    """A single charger (spec v3 §3.4): with its pincode and its connectors."""

    pincode: str | None
    connectors: list[V3ConnectorResource]


def connector_resource(row: Mapping[Any, Any]) -> V3ConnectorResource:
    """Shape a connector row for v3."""
    return V3ConnectorResource(
        id=row["id"],
        charger_id=row["charger_id"],
        connector_id=row["connector_id"],
        status=row["status"],
        error=row["error"],
        error_info=row["error_info"],
        vendor_id=None,
        vendor_error_code=None,
        max_amperage=row["max_amperage"],
        max_voltage=row["max_voltage"],
        standard=None,
        format=None,
        power_type=POWER_TYPES.get(row["phases"]),
        phase_rotation=row["phase_rotation"],
        created_at=format_timestamp(row["created_at"]) or "",
        updated_at=format_timestamp(row["updated_at"]) or "",
    )


def max_current(connectors: Sequence[Mapping[Any, Any]], caps: Mapping[int, float]) -> int | None:
    """The charger's current limit in whole A: the largest connector limit, each its cap (by connector row
    id) or else its rating; null while none is known."""
    limits = [caps.get(int(c["id"]), c["max_amperage"]) for c in connectors]
    known = [int(limit) for limit in limits if limit is not None]
    return max(known) if known else None


def _fields(row: Mapping[Any, Any], allowed: Permissions, *, blocked: bool) -> dict[str, Any]:
    online = row["connection_status"] == "online"
    return {
        "uuid": row["uuid"],
        "id": row["id"],
        "identity": row["identity"],
        "reference": row["reference"],
        "connection_status": row["connection_status"],
        "status": row["status"],
        "error": row["error"],
        "error_info": row["error_info"],
        "vendor_id": row["vendor"],
        "vendor_error_code": None,
        "firmware_version": row["firmware_version"],
        "parsed_firmware_version": row["firmware_version"],
        "server": row["gateway_id"] if online else None,
        "last_connection_at": format_timestamp(row["last_connection_at"]),
        "last_disconnection_at": format_timestamp(row["last_disconnection_at"]),
        "last_heartbeat_at": format_timestamp(row["last_heartbeat_at"]),
        "setup_pending": False,
        "setup_completed": True,
        "blocked": blocked,
        "created_at": format_timestamp(row["created_at"]) or "",
        "updated_at": format_timestamp(row["updated_at"]) or "",
        "licenses": V3Licenses(smart=True, pro=True),
        "model": V3Model(vendor=row["vendor"], name=row["model"], is_dc=False),
        "permissions": V3Permissions(basic=allowed.basic, sensitive=allowed.sensitive, full=allowed.full),
    }


def charger_resource(row: Mapping[Any, Any], allowed: Permissions, *, blocked: bool) -> V3ChargerResource:
    """Shape a charger row for a v3 list (no connectors read: `max_current` null)."""
    return V3ChargerResource(**_fields(row, allowed, blocked=blocked), max_current=None)


def charger_detail_resource(
    row: Mapping[Any, Any],
    connectors: Sequence[Mapping[Any, Any]],
    allowed: Permissions,
    *,
    blocked: bool,
    caps: Mapping[int, float],
) -> V3ChargerDetailResource:
    """Shape a charger row and its connector rows (and their caps, by row id) for the v3 single GET."""
    return V3ChargerDetailResource(
        **_fields(row, allowed, blocked=blocked),
        max_current=max_current(connectors, caps),
        pincode=row["pincode"] if allowed.sensitive else None,
        connectors=[connector_resource(c) for c in connectors],
    )


async def _permissions_by_team(request: Request, rows: Sequence[Mapping[Any, Any]]) -> dict[int, Permissions]:
    rt, user = runtime(request), user_of(request)
    return {team: await reach.permissions(rt, user, TeamId(team)) for team in {int(r["team_id"]) for r in rows}}


async def v3_list_chargers(request: Request) -> Response:
    """Return a page of every charger the user reaches through their teams, oldest first (no connectors)."""
    page = page_window(request)
    rows = await reach.list_chargers(runtime(request), user_of(request), offset=page.offset, limit=page.fetch)
    allowed = await _permissions_by_team(request, rows)
    locked = await charger_settings.blocked_among(runtime(request), [int(row["id"]) for row in rows])
    return page_response(
        request,
        page,
        rows,
        lambda row: charger_resource(row, allowed[int(row["team_id"])], blocked=int(row["id"]) in locked),
    )


async def detail(request: Request, team_id: TeamId, uuid: str) -> V3ChargerDetailResource:
    """The v3 detail of the team's charger."""
    rt = runtime(request)
    row, connectors = await chargers.get_charger_with_connectors(rt, team_id, uuid)
    allowed = await reach.permissions(rt, user_of(request), team_id)
    blocked = await charger_settings.blocked(rt, int(row["id"]))
    caps = await charge_limits.caps_in_amps(rt, int(row["id"]))
    return charger_detail_resource(row, connectors, allowed, blocked=blocked, caps=caps)


async def v3_get_charger(request: Request) -> Response:
    """Return one charger with its connectors, in `data`."""
    team_id, uuid = await charger_team(request)
    return envelope(await detail(request, team_id, uuid))


async def v3_create_charger(request: Request) -> Response:
    """Create a charger for a team of the user (`team_uuid`, else the first), on its site `site_uuid` if given."""
    clean = CREATE.validate(await json_body(request))
    rt, user = runtime(request), user_of(request)
    team_id = await reach.chosen_team(rt, user, clean.get("team_uuid"), "team_uuid")
    site_uuid = clean.get("site_uuid")
    if site_uuid is None:
        row = await chargers.create_team_charger(rt, team_id, clean["identity"])
    else:
        if not UUID_PATTERN.fullmatch(site_uuid) or await reach.site_team_or_none(rt, user, site_uuid) != team_id:
            raise ValidationError.single("site_uuid", SITE_INVALID)
        row = await chargers.create_site_charger(rt, team_id, site_uuid.lower(), clean["identity"])
    return envelope(await detail(request, team_id, row["uuid"]), 201)


async def v3_update_charger(request: Request) -> Response:
    """Change the charger's `reference`."""
    team_id, uuid = await charger_team(request)
    clean = UPDATE.validate(await json_body(request))
    await chargers.update_charger(runtime(request), team_id, uuid, clean)
    return envelope(await detail(request, team_id, uuid))


C = f"{V3}/chargers"

ENDPOINTS = [
    Endpoint(
        "GET",
        C,
        v3_list_chargers,
        "Get all chargers",
        "v3 Chargers",
        query=PAGE_QUERY,
        response=V3ChargerResource,
        shape="page",
        guard=authenticated,
    ),
    Endpoint(
        "POST",
        C,
        v3_create_charger,
        "Create a charger",
        "v3 Chargers",
        body=CREATE,
        response=V3ChargerDetailResource,
        status=201,
        errors=(422,),
        guard=authenticated,
    ),
    Endpoint(
        "GET",
        f"{C}/{{charger}}",
        v3_get_charger,
        "Get a charger",
        "v3 Chargers",
        response=V3ChargerDetailResource,
        guard=authenticated,
    ),
    Endpoint(
        "PUT",
        f"{C}/{{charger}}",
        v3_update_charger,
        "Update a charger",
        "v3 Chargers",
        body=UPDATE,
        response=V3ChargerDetailResource,
        errors=(422,),
        guard=authenticated,
    ),
]
