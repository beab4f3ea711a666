"""Load-balancing groups of a site: a tree under the root group (the main fuse)."""

from __future__ import annotations

from collections.abc import Mapping
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
from voltline.api._rules import is_integer, validate
from voltline.api.auth import runtime, scope, team_member
from voltline.domain.ids import Ref
from voltline.domain.timestamps import format_timestamp
from voltline.errors import ValidationError
from voltline.services import groups
from voltline.services.groups import GroupInput

_UUID_LENGTH = 36

CREATE_GROUP_RULES = {
    "total_amps": f"required|integer|min:1|max:{INT_MAX}",
    "name": "nullable|string|max:255",
    "method": "nullable|in:boost,solar",
    "net_type": "nullable|in:TN,TT,IT",
    "group_id": "nullable|integer",
    "meter_id": "nullable|integer",
    "solar_additional_amps": f"integer|min:0|max:{INT_MAX}",
    "peak_shaving_enabled": "boolean",
    "peak_shaving_threshold": f"integer|min:0|max:{INT_MAX}",
    "solar_always_charge": "boolean",
    "solar_always_charge_amps": f"integer|min:0|max:{INT_MAX}",
}
ASSIGN_RULES = {"charger": "required"}


class GroupResource(msgspec.Struct):
    """A load-balancing group; `group_id` is its parent (null for the root)."""

    uuid: str
    id: int
    site_id: int
    group_id: int | None
    meter_id: int | None
    name: str | None
    total_amps: int
    method: str
    net_type: str | None
    solar_additional_amps: int
    peak_shaving_enabled: bool
    peak_shaving_threshold: int
    solar_always_charge: bool
    solar_always_charge_amps: int
    created_at: str
    updated_at: str


CREATE_GROUP = Contract(
    "CreateGroupBody",
    "Body of POST .../groups (`parent_group_id` is accepted for `group_id`).",
    CREATE_GROUP_RULES,
    defaults={
        "solar_additional_amps": 0,
        "peak_shaving_enabled": False,
        "peak_shaving_threshold": 0,
        "solar_always_charge": False,
        "solar_always_charge_amps": 0,
    },
    aliases={"parent_group_id": "group_id"},
)
UPDATE_GROUP = Contract(
    "UpdateGroupBody",
    "Body of PUT .../groups/{group}: every field optional.",
    CREATE_GROUP_RULES,
    aliases={"parent_group_id": "group_id"},
    partial=True,
)
ASSIGN = Contract(
    "AssignChargerBody", "Body of POST .../groups/{group}/chargers: the charger's id or uuid.", ASSIGN_RULES
)


def group_resource(row: Mapping[Any, Any]) -> GroupResource:
    """Shape a group row for the API."""
    return GroupResource(
        uuid=row["uuid"],
        id=row["id"],
        site_id=row["site_id"],
        group_id=row["group_id"],
        meter_id=row["meter_id"],
        name=row["name"],
        total_amps=row["total_amps"],
        method=row["method"],
        net_type=row["net_type"],
        solar_additional_amps=row["solar_additional_amps"],
        peak_shaving_enabled=bool(row["peak_shaving_enabled"]),
        peak_shaving_threshold=row["peak_shaving_threshold"],
        solar_always_charge=bool(row["solar_always_charge"]),
        solar_always_charge_amps=row["solar_always_charge_amps"],
        created_at=format_timestamp(row["created_at"]) or "",
        updated_at=format_timestamp(row["updated_at"]) or "",
    )


def body_ref(value: Any) -> Ref | None:
    """An id (integer or digits) or a uuid given in a body; None when it cannot name a row."""
    if is_integer(value) and 0 < int(value) <= INT_MAX:
        return int(value)
    if isinstance(value, str) and len(value) == _UUID_LENGTH and value.count("-") == 4:
        return value.lower()
    return None


def _parent_alias(body: dict[str, Any]) -> dict[str, Any]:
    if "group_id" not in body and "parent_group_id" in body:
        body = {**body, "group_id": body["parent_group_id"]}
    return body


def group_input(body: dict[str, Any], rules: Mapping[str, str]) -> GroupInput:
    """Every field checked on its own, so that the service's lookups join the rule errors (Laravel's `exists`)."""
    given = GroupInput({}, {}, tuple(rules))
    for field, spec in rules.items():
        try:
            given.values.update(validate(body, {field: spec}))
        except ValidationError as error:
            given.errors.update(error.errors)
    return given


async def list_groups(request: Request) -> Response:
    """Return a page of the site's groups, the root first."""
    page = page_window(request)
    team_id, site = scope(request).team_id, path_ref(request, "site")
    rows = await groups.list_groups(runtime(request), team_id, site, offset=page.offset, limit=page.fetch)
    return page_response(request, page, rows, group_resource)


async def create_group(request: Request) -> Response:
    """Create a group under a parent of the same site (default: the root group)."""
    given = group_input(_parent_alias(await json_body(request)), CREATE_GROUP.rules)
    row = await groups.create_group(runtime(request), scope(request).team_id, path_ref(request, "site"), given)
    return envelope(group_resource(row), 201)


async def get_group(request: Request) -> Response:
    """Return one group of the site."""
    site, group = path_ref(request, "site"), path_ref(request, "group")
    row = await groups.get_group(runtime(request), scope(request).team_id, site, group)
    return envelope(group_resource(row))


async def update_group(request: Request) -> Response:
    """Change the fields sent; a new parent must not be the group itself or below it."""
    body = _parent_alias(await json_body(request))
    given = group_input(body, UPDATE_GROUP.applicable(body))
    site, group = path_ref(request, "site"), path_ref(request, "group")
    row = await groups.update_group(runtime(request), scope(request).team_id, site, group, given)
    return envelope(group_resource(row))


async def delete_group(request: Request) -> Response:
    """Delete a group; its child groups, chargers and connectors move to its parent."""
    site, group = path_ref(request, "site"), path_ref(request, "group")
    await groups.delete_group(runtime(request), scope(request).team_id, site, group)
    return no_content()


async def assign_charger(request: Request) -> Response:
    """Put a whole charger of the site in the group; its connectors follow the charger."""
    body = await json_body(request)
    site, group = path_ref(request, "site"), path_ref(request, "group")

    def charger() -> Ref | None:
        return body_ref(ASSIGN.read(body).charger)

    row = await groups.assign_charger(runtime(request), scope(request).team_id, site, group, charger)
    return envelope(group_resource(row))


_GROUPS = "/api/v2/teams/{team}/sites/{site}/groups"
_GROUP = _GROUPS + "/{group}"

ENDPOINTS = [
    Endpoint(
        "GET",
        _GROUPS,
        list_groups,
        "Get all groups",
        "Groups",
        query=PAGE_QUERY,
        response=GroupResource,
        shape="page",
        guard=team_member,
    ),
    Endpoint(
        "POST",
        _GROUPS,
        create_group,
        "Create a group",
        "Groups",
        body=CREATE_GROUP,
        response=GroupResource,
        status=201,
        errors=(422,),
        guard=team_member,
    ),
    Endpoint("GET", _GROUP, get_group, "Get a specific group", "Groups", response=GroupResource, guard=team_member),
    Endpoint(
        "PUT",
        _GROUP,
        update_group,
        "Update a group",
        "Groups",
        body=UPDATE_GROUP,
        response=GroupResource,
        errors=(422,),
        guard=team_member,
    ),
    Endpoint(
        "DELETE",
        _GROUP,
        delete_group,
        "Delete a group",
        "Groups",
        shape="empty",
        status=204,
        errors=(422,),
        guard=team_member,
    ),
    Endpoint(
        "POST",
        _GROUP + "/chargers",
        assign_charger,
        "Assign a charger to a group",
        "Groups",
        body=ASSIGN,
        response=GroupResource,
        errors=(422,),
        guard=team_member,
    ),
]
