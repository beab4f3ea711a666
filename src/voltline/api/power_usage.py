"""Live usage of a connector: spec/volttime-api.md A12 and spec/smart-charging.md R-100-R-102.

The body is unwrapped (spec C4): `{"timestamp","L1","L2","L3","kW"}`, currents as strings in A
("-" for a phase never reported), kW with two decimals, the timestamp with milliseconds. With no
data at all the timestamp is null, every phase "-" and kW "0.00". A stale connector without an
open transaction reads zeros stamped with the current time.
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from voltline.api._kit import json_response, path_number, path_ref
from voltline.api._routing import Endpoint
from voltline.api.auth import runtime, scope, team_member
from voltline.domain.power import PHASES, Usage, current_text, kilowatt_text
from voltline.domain.timestamps import format_telemetry_timestamp
from voltline.services import usage


class PowerUsageResource(msgspec.Struct):
    """A connector's live usage: per-phase current in A as text, total power in kW as text."""

    timestamp: str | None
    L1: str
    L2: str
    L3: str
    kW: str


def power_usage_resource(usage: Usage) -> PowerUsageResource:
    """Shape a connector's usage for the API (R-101)."""
    l1, l2, l3 = (current_text(usage.currents.get(phase)) for phase in PHASES)
    stamp = None if usage.timestamp is None else format_telemetry_timestamp(usage.timestamp)
    return PowerUsageResource(timestamp=stamp, L1=l1, L2=l2, L3=l3, kW=kilowatt_text(usage.power))


async def get_site_connector_usage(request: Request) -> Response:
    """Return the live usage of a connector of the site (by its id or uuid)."""
    site, connector = path_ref(request, "site"), path_ref(request, "connector")
    found = await usage.get_site_connector_usage(runtime(request), scope(request).team_id, site, connector)
    return json_response(power_usage_resource(found))


async def get_charger_connector_usage(request: Request) -> Response:
    """Return the live usage of a charger's connector by OCPP number (0 is the charger as a whole)."""
    charger, number = path_ref(request, "charger"), path_number(request, "number")
    found = await usage.get_charger_connector_usage(runtime(request), scope(request).team_id, charger, number)
    return json_response(power_usage_resource(found))


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/v2/teams/{team}/sites/{site}/connectors/{connector}/power-usage",
        get_site_connector_usage,
        "Get current usage of a connector",
        "Sites",
        response=PowerUsageResource,
        shape="raw",
        guard=team_member,
    ),
    Endpoint(
        "GET",
        "/api/v2/teams/{team}/chargers/{charger}/connectors/{number}/power-usage",
        get_charger_connector_usage,
        "Get current usage of a charger's connector",
        "Chargers",
        response=PowerUsageResource,
        shape="raw",
        guard=team_member,
    ),
]
