"""Id tags (RFID cards) of a team, for its `allow_list` authorization mode."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from voltline.api._contract import Contract
from voltline.api._kit import (
    DATE_FORMAT,
    PAGE_QUERY,
    envelope,
    json_body,
    no_content,
    optional_date,
    page_response,
    page_window,
    path_ref,
)
from voltline.api._routing import Endpoint
from voltline.api.auth import runtime, scope, team_member
from voltline.domain.ids import TeamId
from voltline.domain.timestamps import format_timestamp
from voltline.errors import ValidationError
from voltline.services import id_tags
from voltline.services.runtime import Runtime

STATUSES = ("Accepted", "Blocked", "Expired")
CREATE_RULES = {
    "id_tag": "required|string|max:20",
    "status": "nullable|in:" + ",".join(STATUSES),
    "expiry_date": f"nullable|date_format:{DATE_FORMAT}",
    "parent_id_tag": "nullable|string|max:20",
    "name": "nullable|string|max:255",
}


class IdTagResource(msgspec.Struct):
    """An id tag as the API shows it."""

    uuid: str
    id: int
    id_tag: str
    name: str | None
    status: str
    expiry_date: str | None
    parent_id_tag: str | None
    created_at: str
    updated_at: str


CREATE = Contract("CreateIdTagBody", "Body of POST /id-tags; `expiry_date` is `Y-m-d H:i:s` in UTC.", CREATE_RULES)
UPDATE_RULES = {
    "status": "string|in:" + ",".join(STATUSES),
    "expiry_date": f"nullable|date_format:{DATE_FORMAT}",
    "parent_id_tag": "nullable|string|max:20",
    "name": "nullable|string|max:255",
}
UPDATE = Contract(
    "UpdateIdTagBody",
    "Body of PUT /id-tags/{id_tag}: the fields sent change; the local lists of the team's chargers follow.",
    UPDATE_RULES,
    partial=True,
)


def id_tag_resource(row: Mapping[Any, Any]) -> IdTagResource:
    """Shape an id tag row for the API."""
    return IdTagResource(
        uuid=row["uuid"],
        id=row["id"],
        id_tag=row["id_tag"],
        name=row["name"],
        status=row["status"],
        expiry_date=format_timestamp(row["expiry_date"]),
        parent_id_tag=row["parent_id_tag"],
        created_at=format_timestamp(row["created_at"]) or "",
        updated_at=format_timestamp(row["updated_at"]) or "",
    )


async def _validated(rt: Runtime, team_id: TeamId, data: dict[str, Any]) -> dict[str, Any]:
    """The rules plus `unique` on id_tag, all errors collected as Laravel does."""
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    try:
        clean = CREATE.validate(data)
    except ValidationError as error:
        errors = error.errors
    tag = data.get("id_tag")
    if "id_tag" not in errors and isinstance(tag, str) and await id_tags.is_id_tag_taken(rt, team_id, tag):
        errors = {"id_tag": [id_tags.ID_TAG_TAKEN], **errors}
    if errors:
        raise ValidationError(errors)
    return clean


def _values(clean: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": clean.get("status") or "Accepted",
        "expiry_date": optional_date(clean.get("expiry_date")),
        "parent_id_tag": clean.get("parent_id_tag"),
        "name": clean.get("name"),
    }


async def list_id_tags(request: Request) -> Response:
    """Return a page of the team's id tags."""
    page = page_window(request)
    rows = await id_tags.list_id_tags(runtime(request), scope(request).team_id, offset=page.offset, limit=page.fetch)
    return page_response(request, page, rows, id_tag_resource)


async def create_id_tag(request: Request) -> Response:
    """Add an id tag to the team (unique per team, compared case-insensitively)."""
    data = await json_body(request)
    rt, team_id = runtime(request), scope(request).team_id
    clean = await _validated(rt, team_id, data)
    row = await id_tags.create_id_tag(rt, team_id, clean["id_tag"], _values(clean))
    return envelope(id_tag_resource(row), 201)


async def update_id_tag(request: Request) -> Response:
    """Change an id tag of the team (its status: Accepted, Blocked or Expired; expiry, parent, name)."""
    rt, team_id, ref = runtime(request), scope(request).team_id, path_ref(request, "id_tag")
    await id_tags.get_id_tag(rt, team_id, ref)  # 404 before 422, as Laravel binds the route first
    clean = UPDATE.validate(await json_body(request))
    values = {key: value for key, value in clean.items() if key in UPDATE_RULES}
    if "expiry_date" in values:
        values["expiry_date"] = optional_date(values["expiry_date"])
    row = await id_tags.update_id_tag(rt, team_id, ref, values)
    return envelope(id_tag_resource(row))


async def delete_id_tag(request: Request) -> Response:
    """Remove an id tag of the team."""
    await id_tags.delete_id_tag(runtime(request), scope(request).team_id, path_ref(request, "id_tag"))
    return no_content()


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/v2/teams/{team}/id-tags",
        list_id_tags,
        "Get all id tags",
        "Id tags",
        query=PAGE_QUERY,
        response=IdTagResource,
        shape="page",
        guard=team_member,
    ),
    Endpoint(
        "POST",
        "/api/v2/teams/{team}/id-tags",
        create_id_tag,
        "Create an id tag",
        "Id tags",
        body=CREATE,
        response=IdTagResource,
        status=201,
        errors=(422,),
        guard=team_member,
    ),
    Endpoint(
        "PUT",
        "/api/v2/teams/{team}/id-tags/{id_tag}",
        update_id_tag,
        "Update an id tag",
        "Id tags",
        body=UPDATE,
        response=IdTagResource,
        errors=(404, 422),
        guard=team_member,
    ),
    Endpoint(
        "DELETE",
        "/api/v2/teams/{team}/id-tags/{id_tag}",
        delete_id_tag,
        "Delete an id tag",
        "Id tags",
        shape="empty",
        status=204,
        guard=team_member,
    ),
]
