"""v3 sites (locations), their chargers and their cards (spec volttime-v3 §3.5, §3.6, §3.13).

Sites are the user's teams' sites by uuid; `GET /sites?team=` narrows to one team and `POST
/sites` takes `team_uuid` (default: the user's first team; §1.6). Attach and detach are the v2
services. Cards of a site are the id tags of the site's team (DESIGN "v3 API"): a card made on
one site is valid for the whole team.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from voltline.api._contract import Contract
from voltline.api._kit import (
    PAGE_RULES,
    envelope,
    json_body,
    no_content,
    page_of,
    page_response,
    page_window,
    path_ref,
    query_data,
)
from voltline.api._routing import Endpoint
from voltline.api.auth import authenticated, runtime
from voltline.api.chargers import _attempt_counter
from voltline.api.sites import CREATE_SITE, CREATE_SITE_RULES, UPDATE_SITE, _site_values
from voltline.api.v3._common import V3, site_team, user_of, uuid_of
from voltline.api.v3.chargers import V3ConnectorResource, V3Permissions, connector_resource
from voltline.domain.ids import TeamId
from voltline.domain.timestamps import format_timestamp
from voltline.errors import ValidationError
from voltline.services import chargers, connectors, id_tags, reach, sites
from voltline.services.reach import Permissions

LIST_RULES = {**PAGE_RULES, "team": "nullable|string|max:36", "search": "nullable|string|max:255"}
LIST = Contract("V3SitesQuery", "A page of the user's sites: `team` (a team uuid) and `search` narrow it.", LIST_RULES)
CREATE_RULES = {"team_uuid": "nullable|string|max:36", **CREATE_SITE_RULES}
CREATE = Contract(
    "V3CreateSiteBody",
    "Body of POST /api/v3/sites: `team_uuid` (default: the user's first team) and the address.",
    CREATE_RULES,
    defaults=CREATE_SITE.defaults,
)
ATTACH_RULES = {"identity": "required|string|max:255", "pincode": "required"}
ATTACH = Contract("V3AttachChargerBody", "Body of POST /api/v3/sites/{site}/chargers.", ATTACH_RULES)
CARD_RULES = {"name": "required|string|max:255", "id_token": "required|string|max:20"}
CARD = Contract("V3CardBody", "Body of POST / PUT /api/v3/sites/{site}/cards.", CARD_RULES)
ID_TOKEN_TAKEN = "The id token has already been taken."


class LoadManagement(msgspec.Struct):
    """Which load-management features the site has."""

    dynamic: bool
    peak_shaving: bool
    solar: bool


class Capabilities(msgspec.Struct):
    """What the site can do."""

    smart_charging: bool
    load_management: LoadManagement


class V3SiteResource(msgspec.Struct):
    """A site (location) as v3 shows it (spec v3 §3.6)."""

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
    smart_charging: str
    chargers_count: int
    capabilities: Capabilities
    created_at: str
    updated_at: str
    permissions: V3Permissions


class V3SiteChargerResource(msgspec.Struct):
    """A charger in a site's list (spec v3 §3.6), with its connectors."""

    uuid: str
    id: int
    identity: str
    reference: str | None
    connection_status: str
    status: str | None
    created_at: str
    updated_at: str
    connectors: list[V3ConnectorResource]


class SiteConnectorCharger(msgspec.Struct):
    """The charger a site's connector belongs to."""

    uuid: str
    id: int
    identity: str
    connection_status: str
    status: str | None


class V3SiteConnectorResource(V3ConnectorResource):
    """A connector of the site with its parent charger (spec v3 §3.6 `GET /sites/{site}/connectors`)."""

    charger: SiteConnectorCharger


class V3CardResource(msgspec.Struct):
    """A card (spec v3 §3.13): an id tag of the site's team."""

    id: int
    name: str | None
    id_token: str
    created_at: str
    updated_at: str


def address(row: Mapping[Any, Any]) -> str:
    """The formatted address: street, number and addition, postal code and city."""
    number = f"{row['house_number']}{row['house_number_addition'] or ''}"
    return f"{row['street']} {number}, {row['postal_code']} {row['city']}"


def site_resource(row: Mapping[Any, Any], allowed: Permissions) -> V3SiteResource:
    """Shape a site row (with `chargers_count`) for v3."""
    return V3SiteResource(
        uuid=row["uuid"],
        id=row["id"],
        name=row["name"],
        address=address(row),
        street=row["street"],
        postal_code=row["postal_code"],
        house_number=row["house_number"],
        house_number_addition=row["house_number_addition"],
        city=row["city"],
        country=row["country"],
        smart_charging=row["smart_charging"],
        chargers_count=int(row["chargers_count"]),
        capabilities=Capabilities(
            smart_charging=True,
            load_management=LoadManagement(dynamic=bool(row["load_management"]), peak_shaving=False, solar=True),
        ),
        created_at=format_timestamp(row["created_at"]) or "",
        updated_at=format_timestamp(row["updated_at"]) or "",
        permissions=V3Permissions(basic=allowed.basic, sensitive=allowed.sensitive, full=allowed.full),
    )


def card_resource(row: Mapping[Any, Any]) -> V3CardResource:
    """Shape an id tag row as a v3 card."""
    return V3CardResource(
        id=row["id"],
        name=row["name"],
        id_token=row["id_tag"],
        created_at=format_timestamp(row["created_at"]) or "",
        updated_at=format_timestamp(row["updated_at"]) or "",
    )


async def _site(request: Request, team_id: TeamId, uuid: str) -> V3SiteResource:
    rt = runtime(request)
    row = await sites.get_site(rt, team_id, uuid)
    return site_resource(row, await reach.permissions(rt, user_of(request), team_id))


async def v3_list_sites(request: Request) -> Response:
    """Return a page of the user's sites, oldest first; `team` narrows to one team, `search` to a name or address."""
    clean = LIST.validate(query_data(request))
    page, rt, user = page_of(clean), runtime(request), user_of(request)
    team = clean.get("team")
    team_id = None if team is None else await reach.chosen_team(rt, user, team, "team")
    rows = await reach.list_sites(
        rt, user, team_id=team_id, search=clean.get("search"), offset=page.offset, limit=page.fetch
    )
    allowed = {t: await reach.permissions(rt, user, TeamId(t)) for t in {int(r["team_id"]) for r in rows}}
    return page_response(request, page, rows, lambda row: site_resource(row, allowed[int(row["team_id"])]))


async def v3_create_site(request: Request) -> Response:
    """Create a site for a team of the user (`team_uuid`, else the first), with its root group."""
    clean = CREATE.validate(await json_body(request))
    rt = runtime(request)
    team_id = await reach.chosen_team(rt, user_of(request), clean.pop("team_uuid", None), "team_uuid")
    row = await sites.create_site(rt, team_id, _site_values(clean))
    return envelope(await _site(request, team_id, row["uuid"]), 201)


async def v3_get_site(request: Request) -> Response:
    """Return one site of the user's teams."""
    team_id, uuid = await site_team(request)
    return envelope(await _site(request, team_id, uuid))


async def v3_update_site(request: Request) -> Response:
    """Change the fields sent (every field optional); an unknown site is a 404 before any 422."""
    team_id, uuid = await site_team(request)
    body = await json_body(request)
    await sites.update_site(runtime(request), team_id, uuid, lambda: _site_values(UPDATE_SITE.validate(body)))
    return envelope(await _site(request, team_id, uuid))


async def v3_list_site_chargers(request: Request) -> Response:
    """Return a page of the site's chargers with their connectors."""
    team_id, uuid = await site_team(request)
    page, rt = page_window(request), runtime(request)
    rows = await chargers.list_site_chargers(rt, team_id, uuid, offset=page.offset, limit=page.fetch)
    shaped = []
    for row in rows[: page.size]:
        found, connectors = await chargers.get_charger_with_connectors(rt, team_id, row["uuid"])
        shaped.append(_site_charger(found, connectors))
    return page_response(request, page, [*shaped, *rows[page.size :]], lambda item: item)


def _site_charger(row: Mapping[Any, Any], connectors: list[Any]) -> V3SiteChargerResource:
    return V3SiteChargerResource(
        uuid=row["uuid"],
        id=row["id"],
        identity=row["identity"],
        reference=row["reference"],
        connection_status=row["connection_status"],
        status=row["status"],
        created_at=format_timestamp(row["created_at"]) or "",
        updated_at=format_timestamp(row["updated_at"]) or "",
        connectors=[connector_resource(c) for c in connectors],
    )


def site_connector_resource(row: Mapping[Any, Any]) -> V3SiteConnectorResource:
    """Shape a site connector row (with its charger's summary) for v3."""
    charger = SiteConnectorCharger(
        uuid=row["charger_uuid"],
        id=row["charger_id"],
        identity=row["charger_identity"],
        connection_status=row["charger_connection_status"],
        status=row["charger_status"],
    )
    return V3SiteConnectorResource(**msgspec.structs.asdict(connector_resource(row)), charger=charger)


async def v3_list_site_connectors(request: Request) -> Response:
    """Return a page of the connectors of the site's chargers, each with its charger."""
    team_id, uuid = await site_team(request)
    page = page_window(request)
    rows = await connectors.list_site_connectors(runtime(request), team_id, uuid, offset=page.offset, limit=page.fetch)
    return page_response(request, page, rows, site_connector_resource)


async def v3_attach_charger(request: Request) -> Response:
    """Attach an existing charger, proven by its `identity` and `pincode`, to the site (the v2 attach rules)."""
    team_id, uuid = await site_team(request)
    clean = ATTACH.validate(await json_body(request))
    rt = runtime(request)
    row = await chargers.attach_charger(
        rt,
        team_id,
        uuid,
        identity=clean["identity"],
        serial_number=None,
        pincode=clean["pincode"],
        count_attempt=_attempt_counter(request),
    )
    found, connectors = await chargers.get_charger_with_connectors(rt, team_id, row["uuid"])
    return envelope(_site_charger(found, connectors))


async def v3_detach_charger(request: Request) -> Response:
    """Take the charger off the site; it stays with the team and keeps its pincode."""
    team_id, uuid = await site_team(request)
    await chargers.detach_charger(runtime(request), team_id, uuid, uuid_of(request, "charger"))
    return no_content()


async def v3_list_cards(request: Request) -> Response:
    """Return a page of the site's cards: the id tags of the site's team."""
    team_id, _ = await site_team(request)
    page = page_window(request)
    rows = await id_tags.list_id_tags(runtime(request), team_id, offset=page.offset, limit=page.fetch)
    return page_response(request, page, rows, card_resource)


async def _card_values(request: Request, team_id: TeamId, *, keep: str | None = None) -> dict[str, Any]:
    """The validated card, with `id_token` unique in the team (spec v3 §3.13; `keep`: the card's own token)."""
    clean = CARD.validate(await json_body(request))
    token = clean["id_token"]
    if token.upper() != (keep or "").upper() and await id_tags.is_id_tag_taken(runtime(request), team_id, token):
        raise ValidationError.single("id_token", ID_TOKEN_TAKEN)
    return clean


async def v3_create_card(request: Request) -> Response:
    """Add a card to the site (an id tag of its team, Accepted)."""
    team_id, _ = await site_team(request)
    clean = await _card_values(request, team_id)
    values = {"status": "Accepted", "expiry_date": None, "parent_id_tag": None, "name": clean["name"]}
    row = await id_tags.create_id_tag(runtime(request), team_id, clean["id_token"], values)
    return envelope(card_resource(row), 201)


async def v3_update_card(request: Request) -> Response:
    """Change a card's name and id token."""
    team_id, _ = await site_team(request)
    rt = runtime(request)
    card = await id_tags.get_id_tag(rt, team_id, path_ref(request, "card"))
    clean = await _card_values(request, team_id, keep=card["id_tag"])
    row = await id_tags.update_id_tag(rt, team_id, card["id"], {"name": clean["name"], "id_tag": clean["id_token"]})
    return envelope(card_resource(row))


async def v3_delete_card(request: Request) -> Response:
    """Remove a card (the id tag leaves the team)."""
    team_id, _ = await site_team(request)
    await id_tags.delete_id_tag(runtime(request), team_id, path_ref(request, "card"))
    return no_content()


S = f"{V3}/sites"
SITE = f"{S}/{{site}}"
PAGE = Contract("V3PageQuery", "A page of a list: `page` (from 1) and `per_page` (25 unless given).", PAGE_RULES)

ENDPOINTS = [
    Endpoint(
        "GET",
        S,
        v3_list_sites,
        "Get all locations",
        "v3 Sites",
        query=LIST,
        response=V3SiteResource,
        shape="page",
        errors=(422,),
        guard=authenticated,
    ),
    Endpoint(
        "POST",
        S,
        v3_create_site,
        "Create a location",
        "v3 Sites",
        body=CREATE,
        response=V3SiteResource,
        status=201,
        errors=(422,),
        guard=authenticated,
    ),
    Endpoint("GET", SITE, v3_get_site, "Get a location", "v3 Sites", response=V3SiteResource, guard=authenticated),
    Endpoint(
        "PUT",
        SITE,
        v3_update_site,
        "Update a location",
        "v3 Sites",
        body=UPDATE_SITE,
        response=V3SiteResource,
        errors=(422,),
        guard=authenticated,
    ),
    Endpoint(
        "GET",
        f"{SITE}/chargers",
        v3_list_site_chargers,
        "Get the chargers of a location",
        "v3 Sites",
        query=PAGE,
        response=V3SiteChargerResource,
        shape="page",
        guard=authenticated,
    ),
    Endpoint(
        "POST",
        f"{SITE}/chargers",
        v3_attach_charger,
        "Attach a charger",
        "v3 Sites",
        body=ATTACH,
        response=V3SiteChargerResource,
        errors=(422, 429),
        guard=authenticated,
    ),
    Endpoint(
        "DELETE",
        f"{SITE}/chargers/{{charger}}",
        v3_detach_charger,
        "Detach a charger",
        "v3 Sites",
        shape="empty",
        status=204,
        guard=authenticated,
    ),
    Endpoint(
        "GET",
        f"{SITE}/connectors",
        v3_list_site_connectors,
        "Get the connectors of a location",
        "v3 Sites",
        query=PAGE,
        response=V3SiteConnectorResource,
        shape="page",
        guard=authenticated,
    ),
    Endpoint(
        "GET",
        f"{SITE}/cards",
        v3_list_cards,
        "Get the cards of a location",
        "v3 Cards",
        query=PAGE,
        response=V3CardResource,
        shape="page",
        guard=authenticated,
    ),
    Endpoint(
        "POST",
        f"{SITE}/cards",
        v3_create_card,
        "Add a card",
        "v3 Cards",
        body=CARD,
        response=V3CardResource,
        status=201,
        errors=(422,),
        guard=authenticated,
    ),
    Endpoint(
        "PUT",
        f"{SITE}/cards/{{card}}",
        v3_update_card,
        "Update a card",
        "v3 Cards",
        body=CARD,
        response=V3CardResource,
        errors=(422,),
        guard=authenticated,
    ),
    Endpoint(
        "DELETE",
        f"{SITE}/cards/{{card}}",
        v3_delete_card,
        "Delete a card",
        "v3 Cards",
        shape="empty",
        status=204,
        guard=authenticated,
    ),
]
