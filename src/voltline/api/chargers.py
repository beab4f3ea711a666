"""Chargers of a team and of its sites: create, read, update, attach with a pincode, detach."""

from __future__ import annotations

import hmac
from typing import Any

import msgspec
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from voltline.api._kit import PAGE_RULES, envelope, json_body, no_content, page_window, paginated, path_ref
from voltline.api._routing import Endpoint
from voltline.api._rules import validate
from voltline.api.auth import runtime, scope
from voltline.api.connectors import ChargerConnectorResource, charger_connector_resource
from voltline.api.ratelimit import RateLimiter
from voltline.bus.events import publish_charger_detached, publish_settings_changed
from voltline.domain.credentials import new_pincode
from voltline.domain.ids import ChargerId
from voltline.domain.timestamps import format_timestamp
from voltline.errors import RateLimitedError, ValidationError
from voltline.store import chargers, sites

DEPRECATION = "charger.id is deprecated. Use charger.uuid instead."
IDENTITY_TAKEN = "The identity has already been taken."
PINCODE_INVALID = "The pincode is invalid."
ALREADY_ATTACHED = "The charger is already attached to a site."

# DESIGN: Charger security: one identity rule for every new charger (domain.identities); attach names
# an existing charger, so it keeps the plain size rule and older identities stay attachable.
CREATE_RULES = {"identity": "required|string|max:45|regex:ocpp_identity"}
NEW_CHARGER_SECURITY_PROFILE = 1  # no password yet: it cannot connect until it gets one, or profile 0
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


class CreateChargerBody(msgspec.Struct):
    """Body of POST .../chargers: the OCPP identity, unique across the system."""

    identity: str


class UpdateChargerBody(msgspec.Struct):
    """Body of PUT /chargers/{charger}."""

    reference: str | None = None


class AttachChargerBody(msgspec.Struct):
    """Body of POST /sites/{site}/attach-charger: the pincode and the identity or serial number."""

    pincode: str
    identity: str | None = None
    serial_number: str | None = None


def _fields(row: RowMapping) -> dict[str, Any]:
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


def charger_resource(row: RowMapping) -> ChargerResource:
    """Shape a charger row for the API."""
    return ChargerResource(**_fields(row))


def charger_detail_resource(row: RowMapping, connectors: list[RowMapping]) -> ChargerDetailResource:
    """Shape a charger row and its connector rows for the single-charger GET."""
    return ChargerDetailResource(**_fields(row), connectors=[charger_connector_resource(c) for c in connectors])


async def _create(conn: AsyncConnection, data: dict[str, Any], placement: dict[str, Any]) -> RowMapping:
    identity = validate(data, CREATE_RULES)["identity"]
    try:
        values = {**placement, "security_profile": NEW_CHARGER_SECURITY_PROFILE}
        return await chargers.create_charger(conn, identity, new_pincode(), values)
    except chargers.IdentityTakenError:
        raise ValidationError.single("identity", IDENTITY_TAKEN) from None


async def list_site_chargers(request: Request) -> Response:
    """Return a page of the chargers on the site."""
    page, per_page, offset = page_window(request)
    async with runtime(request).db.read() as conn:
        site_id = await sites.get_site_id(conn, scope(request).team_id, path_ref(request, "site"))
        rows = await chargers.list_site_chargers(conn, site_id, offset=offset, limit=per_page + 1)
    items = [charger_resource(row) for row in rows[:per_page]]
    return paginated(request, items, page, per_page, has_more=len(rows) > per_page)


async def create_site_charger(request: Request) -> Response:
    """Create a charger owned by the team, on the site, in the site's root group."""
    data = await json_body(request)
    team_id = scope(request).team_id
    async with runtime(request).db.write() as conn:
        site_id = await sites.get_site_id(conn, team_id, path_ref(request, "site"))
        group_id = await sites.get_root_group_id(conn, site_id)
        row = await _create(conn, data, {"team_id": team_id, "site_id": site_id, "group_id": group_id})
    await publish_settings_changed(runtime(request).bus, site_id)
    return envelope(charger_resource(row), 201)


async def detach_charger(request: Request) -> Response:
    """Take a charger off the site; it stays with the team and keeps its pincode."""
    async with runtime(request).db.write() as conn:
        site_id = await sites.get_site_id(conn, scope(request).team_id, path_ref(request, "site"))
        charger = await chargers.get_site_charger(conn, site_id, path_ref(request, "charger"))
        await chargers.detach_charger(conn, ChargerId(charger["id"]))
    await publish_charger_detached(runtime(request).bus, site_id, int(charger["id"]))
    return no_content()


def _attach_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter | None = getattr(request.app.state, "attach_limiter", None)
    if limiter is None:
        limiter = RateLimiter(runtime(request).settings.attach_attempts_per_minute)
        request.app.state.attach_limiter = limiter
    return limiter


def _count_attempt(request: Request, charger_id: ChargerId) -> None:
    limiter = _attach_limiter(request)
    if limiter.limit <= 0:
        return
    result = limiter.hit(("attach", charger_id), runtime(request).clock.monotonic())
    if not result.allowed:
        raise RateLimitedError(result.retry_after, result.limit)


def _pincode_matches(given: Any, stored: str) -> bool:
    if isinstance(given, bool) or not isinstance(given, str | int):
        return False
    return hmac.compare_digest(str(given).upper().encode(), stored.upper().encode())


async def _verified_charger(request: Request, conn: AsyncConnection, clean: dict[str, Any]) -> RowMapping:
    """The charger the body names, if its pincode matches; every try counts against its limit."""
    candidates = await chargers.find_attach_candidates(conn, clean.get("identity"), clean.get("serial_number"))
    for candidate in candidates:
        _count_attempt(request, ChargerId(candidate["id"]))
    for candidate in candidates:
        if _pincode_matches(clean["pincode"], candidate["pincode"]):
            return candidate
    raise ValidationError.single("pincode", PINCODE_INVALID)


async def attach_charger(request: Request) -> Response:
    """Move a charger, proven by its pincode, to this site, its team and its root group."""
    data = await json_body(request)
    team_id = scope(request).team_id
    async with runtime(request).db.write() as conn:
        site_id = await sites.get_site_id(conn, team_id, path_ref(request, "site"))
        charger = await _verified_charger(request, conn, validate(data, ATTACH_RULES))
        group_id = await sites.get_root_group_id(conn, site_id)
        now = runtime(request).clock.now()
        row = await chargers.attach_charger(conn, ChargerId(charger["id"]), team_id, site_id, group_id, now=now)
    if row is None:
        raise ValidationError.single("identity", ALREADY_ATTACHED)
    await publish_settings_changed(runtime(request).bus, site_id, charger_id=int(row["id"]))
    return envelope(charger_resource(row))


async def list_team_chargers(request: Request) -> Response:
    """Return every charger the team owns (unpaginated, as observed)."""
    async with runtime(request).db.read() as conn:
        rows = await chargers.list_team_chargers(conn, scope(request).team_id)
    return envelope([charger_resource(row) for row in rows])


async def create_team_charger(request: Request) -> Response:
    """Create a charger owned by the team, not yet on a site."""
    data = await json_body(request)
    async with runtime(request).db.write() as conn:
        row = await _create(conn, data, {"team_id": scope(request).team_id})
    return envelope(charger_resource(row), 201)


async def get_charger(request: Request) -> Response:
    """Return one charger of the team with its connectors."""
    async with runtime(request).db.read() as conn:
        row = await chargers.get_charger(conn, scope(request).team_id, path_ref(request, "charger"))
        connectors = await chargers.list_charger_connectors(conn, ChargerId(row["id"]))
    return envelope(charger_detail_resource(row, connectors))


async def update_charger(request: Request) -> Response:
    """Change a charger's reference."""
    data = await json_body(request)
    async with runtime(request).db.write() as conn:
        charger = await chargers.get_charger(conn, scope(request).team_id, path_ref(request, "charger"))
        clean = validate(data, UPDATE_RULES)
        row = await chargers.update_charger(conn, ChargerId(charger["id"]), clean)
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
        query=PAGE_RULES,
        response=ChargerResource,
        shape="page",
    ),
    Endpoint(
        "POST",
        f"{_SITE}/chargers",
        create_site_charger,
        "Create a new charger",
        "Sites",
        body=CreateChargerBody,
        response=ChargerResource,
        status=201,
        errors=(422,),
    ),
    Endpoint(
        "DELETE",
        f"{_SITE}/chargers/{{charger}}",
        detach_charger,
        "Detach a charger",
        "Sites",
        shape="empty",
        status=204,
    ),
    Endpoint(
        "POST",
        f"{_SITE}/attach-charger",
        attach_charger,
        "Attach an existing charger",
        "Sites",
        body=AttachChargerBody,
        response=ChargerResource,
        errors=(422, 429),
    ),
    Endpoint(
        "GET",
        f"{_TEAM}/chargers",
        list_team_chargers,
        "Get all chargers",
        "Chargers",
        response=ChargerResource,
        shape="list",
    ),
    Endpoint(
        "POST",
        f"{_TEAM}/chargers",
        create_team_charger,
        "Create a new charger",
        "Chargers",
        body=CreateChargerBody,
        response=ChargerResource,
        status=201,
        errors=(422,),
    ),
    Endpoint(
        "GET",
        f"{_TEAM}/chargers/{{charger}}",
        get_charger,
        "Get a specific charger",
        "Chargers",
        response=ChargerDetailResource,
    ),
    Endpoint(
        "PUT",
        f"{_TEAM}/chargers/{{charger}}",
        update_charger,
        "Update a charger",
        "Chargers",
        body=UpdateChargerBody,
        response=ChargerResource,
        errors=(422,),
    ),
]
