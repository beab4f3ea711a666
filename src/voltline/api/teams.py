"""The current user, teams, and a team's authorization mode."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from voltline.api._contract import Contract
from voltline.api._kit import envelope, json_body, json_response
from voltline.api._routing import Endpoint
from voltline.api.auth import authenticated, runtime, scope, team_member, team_owner
from voltline.domain.credentials import user_hmac
from voltline.domain.timestamps import format_timestamp
from voltline.services import teams

TEAM_TYPES = ("Personal", "HOA", "Retailer", "Installer", "Wholesaler", "Company", "OEM", "Other")
AUTHORIZATION_MODES = ("accept_all", "allow_list")

CREATE_TEAM_RULES = {
    "name": "required|string|max:255",
    "email": "nullable|string|email|max:255",
    "type": "nullable|string|in:" + ",".join(TEAM_TYPES),
}
AUTHORIZATION_RULES = {"authorization_mode": "required|string|in:" + ",".join(AUTHORIZATION_MODES)}


class Intercom(msgspec.Struct):
    """Identity-verification HMACs of the user."""

    hmac_android: str
    hmac_ios: str
    hmac_web: str


class UserResource(msgspec.Struct):
    """The current user (returned unwrapped)."""

    uuid: str
    id: int
    name: str
    email: str
    intercom: Intercom
    created_at: str
    updated_at: str


class TeamResource(msgspec.Struct):
    """A team as the v2 API shows it."""

    uuid: str
    id: int
    is_personal_team: bool
    name: str
    type: str
    email: str | None
    created_at: str
    updated_at: str


CREATE_TEAM = Contract("CreateTeamBody", "Body of POST /teams.", CREATE_TEAM_RULES)
AUTHORIZATION = Contract("AuthorizationBody", "Body of PUT /teams/{team}/authorization.", AUTHORIZATION_RULES)


class AuthorizationResource(msgspec.Struct):
    """How the team's chargers authorize id tags: `accept_all` or `allow_list`."""

    authorization_mode: str


def team_resource(row: Mapping[Any, Any]) -> TeamResource:
    """Shape a team row for the API."""
    return TeamResource(
        uuid=row["uuid"],
        id=row["id"],
        is_personal_team=bool(row["is_personal_team"]),
        name=row["name"],
        type=row["type"],
        email=row["email"],
        created_at=format_timestamp(row["created_at"]) or "",
        updated_at=format_timestamp(row["updated_at"]) or "",
    )


async def get_user(request: Request) -> Response:
    """Return the user behind the token, unwrapped."""
    principal = request.state.principal
    rt = runtime(request)
    user = await teams.get_user(rt, principal.user_id)
    hmacs = {channel: user_hmac(rt.secret_key, user["uuid"], channel) for channel in ("android", "ios", "web")}
    return json_response(
        UserResource(
            uuid=user["uuid"],
            id=user["id"],
            name=user["name"],
            email=user["email"],
            intercom=Intercom(hmac_android=hmacs["android"], hmac_ios=hmacs["ios"], hmac_web=hmacs["web"]),
            created_at=format_timestamp(user["created_at"]) or "",
            updated_at=format_timestamp(user["updated_at"]) or "",
        )
    )


async def list_teams(request: Request) -> Response:
    """Return every team the user belongs to (unpaginated, as observed)."""
    rows = await teams.list_teams_of_user(runtime(request), request.state.principal.user_id)
    return envelope([team_resource(row) for row in rows])


async def create_team(request: Request) -> Response:
    """Create a team owned by the caller."""
    body = CREATE_TEAM.read(await json_body(request))
    principal = request.state.principal
    team = await teams.create_team(
        runtime(request), principal.user_id, name=body.name, email=body.email, type_=body.type or "Other"
    )
    return envelope(team_resource(team), 201)


async def get_authorization(request: Request) -> Response:
    """Return the team's id-tag authorization mode."""
    mode = await teams.get_authorization_mode(runtime(request), scope(request).team_id)
    return envelope(AuthorizationResource(authorization_mode=mode))


async def update_authorization(request: Request) -> Response:
    """Set the team's id-tag authorization mode."""
    body = AUTHORIZATION.read(await json_body(request))
    mode = await teams.set_authorization_mode(runtime(request), scope(request).team_id, body.authorization_mode)
    return envelope(AuthorizationResource(authorization_mode=mode))


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/v2/user",
        get_user,
        "Fetch the current user",
        "Users",
        response=UserResource,
        shape="raw",
        guard=authenticated,
    ),
    Endpoint(
        "GET",
        "/api/v2/teams",
        list_teams,
        "Get all teams",
        "Teams",
        response=list[TeamResource],
        shape="data",
        guard=authenticated,
    ),
    Endpoint(
        "POST",
        "/api/v2/teams",
        create_team,
        "Create a new team",
        "Teams",
        body=CREATE_TEAM,
        response=TeamResource,
        status=201,
        errors=(422,),
        guard=authenticated,
    ),
    Endpoint(
        "GET",
        "/api/v2/teams/{team}/authorization",
        get_authorization,
        "Get the id-tag authorization mode",
        "Id tags",
        response=AuthorizationResource,
        guard=team_member,
    ),
    Endpoint(
        "PUT",
        "/api/v2/teams/{team}/authorization",
        update_authorization,
        "Set the id-tag authorization mode",
        "Id tags",
        body=AUTHORIZATION,
        response=AuthorizationResource,
        errors=(422,),
        guard=team_owner,
    ),
]
