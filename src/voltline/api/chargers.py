"""Chargers of a team and of its sites: create, read, update, attach with a pincode, detach."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from voltline.api._contract import Contract
from voltline.api._kit import (
    PAGE_QUERY,
    envelope,
    json_body,
    no_content,
    page_response,
    page_window,
    path_ref,
)
from voltline.api._routing import Endpoint
from voltline.api.auth import runtime, scope, team_member
from voltline.api.connectors import ChargerConnectorResource, charger_connector_resource
from voltline.api.ratelimit import RateLimiter
from voltline.domain.ids import ChargerId
from voltline.domain.timestamps import format_timestamp
from voltline.errors import RateLimitedError
from voltline.services import chargers

DEPRECATION = "charger.id is deprecated. Use charger.uuid instead."

# DESIGN: Charger security: one identity rule for every new charger (domain.identities); attach names
# an existing charger, so it keeps the plain size rule and older identities stay attachable.
CREATE_RULES = {"identity": "required|string|max:45|regex:ocpp_identity"}
UPDATE_RULES = {"reference": "nullable|string|max:255"}
ATTACH_RULES = {
    "pincode": "required|size:8",
    "identity": "required_without:serial_number|string|max:45",
    "serial_number": "required_without:identity|string|max:64",
}


class Licenses(msgspec.Struct):
    """The charger's licences."""

    smart: bool
    pro: bool


class ChargerResource(msgspec.Struct):
    """A charger as the v2 API shows it; `deprecation` comes first (DESIGN: wire details)."""

    deprecation: str
    uuid: str
    id: int
    identity: str
    reference: str | None
    connection_status: str
    status: str | None
    error: str | None
    error_info: str | None
    created_at: str
    updated_at: str
    licenses: Licenses


class ChargerDetailResource(ChargerResource):
    """A single charger, with its connectors."""

    connectors: list[ChargerConnectorResource]


CREATE = Contract(
    "CreateChargerBody", "Body of POST .../chargers: the OCPP identity, unique across the system.", CREATE_RULES
)
UPDATE = Contract("UpdateChargerBody", "Body of PUT /chargers/{charger}.", UPDATE_RULES)
ATTACH = Contract(
    "AttachChargerBody",
    "Body of POST /sites/{site}/attach-charger: the pincode and the identity or serial number.",
    ATTACH_RULES,
)


def _fields(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "deprecation": DEPRECATION,
        "uuid": row["uuid"],
        "id": row["id"],
        "identity": row["identity"],
        "reference": row["reference"],
        "connection_status": row["connection_status"],
        "status": row["status"],
        "error": row["error"],
        "error_info": row["error_info"],
        "created_at": format_timestamp(row["created_at"]) or "",
        "updated_at": format_timestamp(row["updated_at"]) or "",
        "licenses": Licenses(smart=bool(row["license_smart"]), pro=bool(row["license_pro"])),
    }


def charger_resource(row: Mapping[Any, Any]) -> ChargerResource:
    """Shape a charger row for the API."""
    return ChargerResource(**_fields(row))


def charger_detail_resource(row: Mapping[Any, Any], connectors: list[Any]) -> ChargerDetailResource:
    """Shape a charger row and its connector rows for the single-charger GET."""
    return ChargerDetailResource(**_fields(row), connectors=[charger_connector_resource(c) for c in connectors])


async def list_site_chargers(request: Request) -> Response:
    """Return a page of the chargers on the site."""
    page = page_window(request)
    site = path_ref(request, "site")
    rows = await chargers.list_site_chargers(
        runtime(request), scope(request).team_id, site, offset=page.offset, limit=page.fetch
    )
    return page_response(request, page, rows, charger_resource)


async def create_site_charger(request: Request) -> Response:
    """Create a charger owned by the team, on the site, in the site's root group."""
    data = await json_body(request)
    rt, team_id, site = runtime(request), scope(request).team_id, path_ref(request, "site")
    await chargers.get_site_id(rt, team_id, site)  # the path is bound before the body is checked (Laravel)
    identity = CREATE.read(data).identity
    row = await chargers.create_site_charger(rt, team_id, site, identity)
    return envelope(charger_resource(row), 201)


async def detach_charger(request: Request) -> Response:
    """Take a charger off the site; it stays with the team and keeps its pincode."""
    site, charger = path_ref(request, "site"), path_ref(request, "charger")
    await chargers.detach_charger(runtime(request), scope(request).team_id, site, charger)
    return no_content()


def _attach_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter | None = getattr(request.app.state, "attach_limiter", None)
    if limiter is None:
        limiter = RateLimiter(runtime(request).settings.attach_attempts_per_minute)
        request.app.state.attach_limiter = limiter
    return limiter


def _attempt_counter(request: Request) -> chargers.CountAttempt:
    """Counts one pincode try against a charger's per-minute budget; 429 once it is spent."""
    limiter, clock = _attach_limiter(request), runtime(request).clock

    def count(charger_id: ChargerId) -> None:
        if limiter.limit <= 0:
            return
        result = limiter.hit(("attach", charger_id), clock.monotonic())
        if not result.allowed:
            raise RateLimitedError(result.retry_after, result.limit)

    return count


async def attach_charger(request: Request) -> Response:
    """Move a charger, proven by its pincode, to this site, its team and its root group."""
    data = await json_body(request)
    rt, team_id, site = runtime(request), scope(request).team_id, path_ref(request, "site")
    await chargers.get_site_id(rt, team_id, site)
    clean = ATTACH.validate(data)
    row = await chargers.attach_charger(
        rt,
        team_id,
        site,
        identity=clean.get("identity"),
        serial_number=clean.get("serial_number"),
        pincode=clean["pincode"],
        count_attempt=_attempt_counter(request),
    )
    return envelope(charger_resource(row))


async def list_team_chargers(request: Request) -> Response:
    """Return every charger the team owns (unpaginated, as observed)."""
    rows = await chargers.list_team_chargers(runtime(request), scope(request).team_id)
    return envelope([charger_resource(row) for row in rows])


async def create_team_charger(request: Request) -> Response:
    """Create a charger owned by the team, not yet on a site."""
    identity = CREATE.read(await json_body(request)).identity
    row = await chargers.create_team_charger(runtime(request), scope(request).team_id, identity)
    return envelope(charger_resource(row), 201)


async def get_charger(request: Request) -> Response:
    """Return one charger of the team with its connectors."""
    ref = path_ref(request, "charger")
    row, connectors = await chargers.get_charger_with_connectors(runtime(request), scope(request).team_id, ref)
    return envelope(charger_detail_resource(row, connectors))


async def update_charger(request: Request) -> Response:
    """Change a charger's reference."""
    data = await json_body(request)
    rt, team_id, ref = runtime(request), scope(request).team_id, path_ref(request, "charger")
    await chargers.get_charger(rt, team_id, ref)  # the path is bound before the body is checked (Laravel)
    row = await chargers.update_charger(rt, team_id, ref, UPDATE.validate(data))
    return envelope(charger_resource(row))


_SITE = "/api/v2/teams/{team}/sites/{site}"
_TEAM = "/api/v2/teams/{team}"

ENDPOINTS = [
    Endpoint(
        "GET",
        f"{_SITE}/chargers",
        list_site_chargers,
        "Get all chargers",
        "Sites",
        query=PAGE_QUERY,
        response=ChargerResource,
        shape="page",
        guard=team_member,
    ),
    Endpoint(
        "POST",
        f"{_SITE}/chargers",
        create_site_charger,
        "Create a new charger",
        "Sites",
        body=CREATE,
        response=ChargerResource,
        status=201,
        errors=(422,),
        guard=team_member,
    ),
    Endpoint(
        "DELETE",
        f"{_SITE}/chargers/{{charger}}",
        detach_charger,
        "Detach a charger",
        "Sites",
        shape="empty",
        status=204,
        guard=team_member,
    ),
    Endpoint(
        "POST",
        f"{_SITE}/attach-charger",
        attach_charger,
        "Attach an existing charger",
        "Sites",
        body=ATTACH,
        response=ChargerResource,
        errors=(422, 429),
        guard=team_member,
    ),
    Endpoint(
        "GET",
        f"{_TEAM}/chargers",
        list_team_chargers,
        "Get all chargers",
        "Chargers",
        response=ChargerResource,
        shape="list",
        guard=team_member,
    ),
    Endpoint(
        "POST",
        f"{_TEAM}/chargers",
        create_team_charger,
        "Create a new charger",
        "Chargers",
        body=CREATE,
        response=ChargerResource,
        status=201,
        errors=(422,),
        guard=team_member,
    ),
    Endpoint(
        "GET",
        f"{_TEAM}/chargers/{{charger}}",
        get_charger,
        "Get a specific charger",
        "Chargers",
        response=ChargerDetailResource,
        guard=team_member,
    ),
    Endpoint(
        "PUT",
        f"{_TEAM}/chargers/{{charger}}",
        update_charger,
        "Update a charger",
        "Chargers",
        body=UPDATE,
        response=ChargerResource,
        errors=(422,),
        guard=team_member,
    ),
]
