"""v3 connector settings (spec volttime-v3 §3.7 `PUT /chargers/{charger}/connectors/{connector_id}`).

The connector is named by its OCPP number; the change goes through v2's connector service with
v2's rules (max_amperage 6-1000 A, a 3-phase rotation), so both APIs hold one rule. The service
is site-scoped (a connector's limit feeds its site's load balancing): a charger on no site is a
409 `The charger is not on a site.`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from voltline.api._contract import Contract
from voltline.api._kit import envelope, json_body, path_number
from voltline.api._routing import Endpoint
from voltline.api.auth import authenticated, runtime
from voltline.api.connectors import UPDATE_RULES as V2_RULES
from voltline.api.v3._common import V3, charger_team
from voltline.api.v3.chargers import V3ConnectorResource, connector_resource
from voltline.errors import ConflictError, NotFoundError
from voltline.services import chargers, connectors

NOT_ON_A_SITE = "The charger is not on a site."
UPDATE_RULES = {
    "phase_rotation": "required|" + V2_RULES["phase_rotation"].removeprefix("nullable|"),
    "max_amperage": "required|" + V2_RULES["max_amperage"].removeprefix("nullable|"),
}
UPDATE = Contract("V3UpdateConnectorBody", "Body of PUT /api/v3/chargers/{charger}/connectors/{number}.", UPDATE_RULES)


async def v3_update_connector(request: Request) -> Response:
    """Set a connector's `phase_rotation` and `max_amperage` (A); an unknown connector is a 404 before any 422."""
    team_id, uuid = await charger_team(request)
    number, rt = path_number(request, "number"), runtime(request)
    charger, rows = await chargers.get_charger_with_connectors(rt, team_id, uuid)
    found = [row for row in rows if row["connector_id"] == number]
    if not found:
        raise NotFoundError("connector")
    body = await json_body(request)
    if charger["site_id"] is None:
        UPDATE.validate(body)
        raise ConflictError(NOT_ON_A_SITE)
    row = await connectors.update_site_connector(
        rt, team_id, int(charger["site_id"]), int(found[0]["id"]), lambda: UPDATE.validate(body)
    )
    return envelope(connector_resource(row))


ENDPOINTS = [
    Endpoint(
        "PUT",
        f"{V3}/chargers/{{charger}}/connectors/{{number}}",
        v3_update_connector,
        "Update a connector",
        "v3 Connectors",
        body=UPDATE,
        response=V3ConnectorResource,
        errors=(409, 422),
        guard=authenticated,
    ),
]
