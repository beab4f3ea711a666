"""Sites of a team: address, electrical connection and prices; deleted softly."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from voltline.api._contract import Contract
from voltline.api._kit import (
    INT_MAX,
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
from voltline.domain.timestamps import format_timestamp
from voltline.services import sites

# Integer columns are 32-bit on PostgreSQL; larger values are refused as input, never stored.
MONEY_MAX = 1_000_000
FOUR_PLACES = Decimal("0.0001")

CREATE_SITE_RULES = {
    "name": "required|string|max:255",
    "street": "required|string|max:255",
    "house_number": f"required|integer|min:0|max:{INT_MAX}",
    "postal_code": "required|string|max:255",
    "city": "required|string|max:255",
    "country": "required|string|max:2",
    "house_number_addition": "nullable|string|max:255",
    "phase": "in:1,3",
    "main_fuse_amperage": "integer|min:1|max:10000",
    "load_management": "boolean",
    "net_type": "nullable|in:TN,TT,IT",
}
UPDATE_SITE_RULES = {
    **CREATE_SITE_RULES,
    "timezone": "nullable|timezone",
    "price_zone": "nullable|string|max:16",
    "kwh_price": f"nullable|numeric|min:0|max:{MONEY_MAX}",
    "start_cost": f"nullable|numeric|min:0|max:{MONEY_MAX}",
}


class SiteResource(msgspec.Struct):
    """A site as the v2 API shows it."""

    uuid: str
    id: int
    name: str
    address: str | None
    street: str
    postal_code: str
    house_number: int
    house_number_addition: str | None
    city: str
    country: str
    phase: int
    main_fuse_amperage: int
    load_management: bool
    net_type: str | None
    smart_charging: str
    timezone: str | None
    price_zone: str | None
    kwh_price: str | None
    start_cost: str | None
    chargers_count: int
    created_at: str
    updated_at: str


CREATE_SITE = Contract(
    "CreateSiteBody",
    "Body of POST /sites.",
    CREATE_SITE_RULES,
    defaults={"phase": 3, "main_fuse_amperage": 25, "load_management": False},
)
UPDATE_SITE = Contract(
    "UpdateSiteBody", "Body of PUT /sites/{site}: every field optional.", UPDATE_SITE_RULES, partial=True
)


def money_text(value: Any) -> str | None:
    """A validated numeric input as text with 4 decimals, rounded half-up ("0.25" -> "0.2500")."""
    if value is None:
        return None
    amount = Decimal(str(value)).quantize(FOUR_PLACES, rounding=ROUND_HALF_UP)
    return str(amount if amount else Decimal("0.0000"))


def site_resource(row: Mapping[Any, Any]) -> SiteResource:
    """Shape a site row (with `chargers_count`) for the API."""
    return SiteResource(
        uuid=row["uuid"],
        id=row["id"],
        name=row["name"],
        address=None,
        street=row["street"],
        postal_code=row["postal_code"],
        house_number=row["house_number"],
        house_number_addition=row["house_number_addition"],
        city=row["city"],
        country=row["country"],
        phase=row["phase"],
        main_fuse_amperage=row["main_fuse_amperage"],
        load_management=bool(row["load_management"]),
        net_type=row["net_type"],
        smart_charging=row["smart_charging"],
        timezone=row["timezone"],
        price_zone=row["price_zone"],
        kwh_price=row["kwh_price"],
        start_cost=row["start_cost"],
        chargers_count=int(row["chargers_count"]),
        created_at=format_timestamp(row["created_at"]) or "",
        updated_at=format_timestamp(row["updated_at"]) or "",
    )


def _site_values(clean: dict[str, Any]) -> dict[str, Any]:
    values = dict(clean)
    if "phase" in values:
        values["phase"] = int(values["phase"])
    for field in ("kwh_price", "start_cost"):
        if field in values:
            values[field] = money_text(values[field])
    return values


async def list_sites(request: Request) -> Response:
    """Return a page of the team's sites, oldest first."""
    page = page_window(request)
    rows = await sites.list_sites(runtime(request), scope(request).team_id, offset=page.offset, limit=page.fetch)
    return page_response(request, page, rows, site_resource)


async def create_site(request: Request) -> Response:
    """Create a site, and its root group sized by the main fuse."""
    clean = CREATE_SITE.validate(await json_body(request))
    row = await sites.create_site(runtime(request), scope(request).team_id, _site_values(clean))
    return envelope(site_resource(row), 201)


async def get_site(request: Request) -> Response:
    """Return one site of the team."""
    row = await sites.get_site(runtime(request), scope(request).team_id, path_ref(request, "site"))
    return envelope(site_resource(row))


async def update_site(request: Request) -> Response:
    """Change the fields sent (Laravel's `sometimes`); an unknown site is a 404 before any 422."""
    body = await json_body(request)

    def check() -> dict[str, Any]:
        return _site_values(UPDATE_SITE.validate(body))

    row = await sites.update_site(runtime(request), scope(request).team_id, path_ref(request, "site"), check)
    return envelope(site_resource(row))


async def delete_site(request: Request) -> Response:
    """Delete a site softly: it leaves every list and lookup, its chargers are detached."""
    await sites.delete_site(runtime(request), scope(request).team_id, path_ref(request, "site"))
    return no_content()


_SITES = "/api/v2/teams/{team}/sites"
_SITE = _SITES + "/{site}"

ENDPOINTS = [
    Endpoint(
        "GET",
        _SITES,
        list_sites,
        "Get all sites",
        "Sites",
        query=PAGE_QUERY,
        response=SiteResource,
        shape="page",
        guard=team_member,
    ),
    Endpoint(
        "POST",
        _SITES,
        create_site,
        "Create a new site",
        "Sites",
        body=CREATE_SITE,
        response=SiteResource,
        status=201,
        errors=(422,),
        guard=team_member,
    ),
    Endpoint("GET", _SITE, get_site, "Get a specific site", "Sites", response=SiteResource, guard=team_member),
    Endpoint(
        "PUT",
        _SITE,
        update_site,
        "Update a site",
        "Sites",
        body=UPDATE_SITE,
        response=SiteResource,
        errors=(422,),
        guard=team_member,
    ),
    Endpoint("DELETE", _SITE, delete_site, "Delete a site", "Sites", shape="empty", status=204, guard=team_member),
]
