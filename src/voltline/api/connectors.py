"""Connectors of the chargers on a site: listing, and the settings load balancing needs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from voltline.api._contract import Contract
from voltline.api._kit import PAGE_QUERY, envelope, json_body, page_response, page_window, path_ref
from voltline.api._routing import Endpoint
from voltline.api.auth import runtime, scope, team_member
from voltline.domain.timestamps import format_timestamp
from voltline.services import connectors

PHASE_ROTATIONS = ("RST", "RTS", "SRT", "STR", "TRS", "TSR")
UPDATE_RULES = {
    "max_amperage": "nullable|integer|min:6|max:1000",
    "max_voltage": "nullable|integer|min:1|max:1000",
    "phases": "in:1,3",
    "phase_rotation": "nullable|in:" + ",".join(PHASE_ROTATIONS),
    "group_id": "nullable|integer",
}


class ConnectorCharger(msgspec.Struct):
    """The charger a connector belongs to, as a site's connector list nests it."""

    uuid: str
    id: int
    identity: str
    connection_status: str
    status: str | None


class ChargerConnectorResource(msgspec.Struct):
    """A connector inside a single-charger response."""

    uuid: str
    id: int
    charger_id: int
    connector_id: int
    evse_id: int | None
    status: str | None
    error: str | None
    error_info: str | None
    max_amperage: int | None
    max_voltage: int | None
    phases: int
    phase_rotation: str | None
    group_id: int | None
    smart_charging_state: str
    created_at: str
    updated_at: str


class ConnectorResource(msgspec.Struct):
    """A connector in a site's list, with its charger nested."""

    uuid: str
    id: int
    charger_id: int
    connector_id: int
    evse_id: int | None
    status: str | None
    error: str | None
    error_info: str | None
    max_amperage: int | None
    max_voltage: int | None
    phases: int
    phase_rotation: str | None
    group_id: int | None
    smart_charging_state: str
    charger: ConnectorCharger
    created_at: str
    updated_at: str


UPDATE = Contract(
    "UpdateConnectorBody",
    "Body of PUT /sites/{site}/connectors/{connector}; a null group_id inherits the charger's group.",
    UPDATE_RULES,
    partial=True,
)


def _fields(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "uuid": row["uuid"],
        "id": row["id"],
        "charger_id": row["charger_id"],
        "connector_id": row["connector_id"],
        "evse_id": row["evse_id"],
        "status": row["status"],
        "error": row["error"],
        "error_info": row["error_info"],
        "max_amperage": row["max_amperage"],
        "max_voltage": row["max_voltage"],
        "phases": row["phases"],
        "phase_rotation": row["phase_rotation"],
        "group_id": connectors.effective_group_id(row),
        "smart_charging_state": row["smart_charging_state"],
    }


def _stamps(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "created_at": format_timestamp(row["created_at"]) or "",
        "updated_at": format_timestamp(row["updated_at"]) or "",
    }


def charger_connector_resource(row: Mapping[Any, Any]) -> ChargerConnectorResource:
    """Shape a connector row (with its charger's group) for a single-charger response."""
    return ChargerConnectorResource(**_fields(row), **_stamps(row))


def connector_resource(row: Mapping[Any, Any]) -> ConnectorResource:
    """Shape a connector row (with its charger's summary) for a site's list."""
    charger = ConnectorCharger(
        uuid=row["charger_uuid"],
        id=row["charger_id"],
        identity=row["charger_identity"],
        connection_status=row["charger_connection_status"],
        status=row["charger_status"],
    )
    return ConnectorResource(**_fields(row), charger=charger, **_stamps(row))


async def list_site_connectors(request: Request) -> Response:
    """Return a page of the connectors of the chargers on the site."""
    page = page_window(request)
    team_id, site = scope(request).team_id, path_ref(request, "site")
    rows = await connectors.list_site_connectors(runtime(request), team_id, site, offset=page.offset, limit=page.fetch)
    return page_response(request, page, rows, connector_resource)


async def update_site_connector(request: Request) -> Response:
    """Change a connector's limits, phases and group (null inherits the charger's group)."""
    data = await json_body(request)

    def check() -> dict[str, Any]:
        clean = UPDATE.validate(data)
        if "phases" in clean:
            clean["phases"] = int(clean["phases"])
        return clean

    site, connector = path_ref(request, "site"), path_ref(request, "connector")
    row = await connectors.update_site_connector(runtime(request), scope(request).team_id, site, connector, check)
    return envelope(connector_resource(row))


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/v2/teams/{team}/sites/{site}/connectors",
        list_site_connectors,
        "Get all connectors for a site",
        "Sites",
        query=PAGE_QUERY,
        response=ConnectorResource,
        shape="page",
        guard=team_member,
    ),
    Endpoint(
        "PUT",
        "/api/v2/teams/{team}/sites/{site}/connectors/{connector}",
        update_site_connector,
        "Update a connector",
        "Sites",
        body=UPDATE,
        response=ConnectorResource,
        errors=(422,),
        guard=team_member,
    ),
]
