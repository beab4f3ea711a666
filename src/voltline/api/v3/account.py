"""v3 user and teams (spec volttime-v3 §3.1, §3.14): `GET /user` unwrapped, the user's teams."""

from __future__ import annotations

import hashlib

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from voltline.api._kit import envelope, json_body, json_response
from voltline.api._routing import Endpoint
from voltline.api.auth import authenticated, runtime
from voltline.api.teams import CREATE_TEAM, TeamResource, team_resource
from voltline.api.v3._common import V3, user_of
from voltline.domain.timestamps import format_timestamp
from voltline.services import teams


class V3UserResource(msgspec.Struct):
    """The current user (unwrapped; spec v3 §3.1)."""

    uuid: str
    id: int
    name: str
    email: str
    avatar: str
    created_at: str
    updated_at: str


def gravatar(email: str) -> str:
    """The Gravatar URL of an address (spec v3 §3.1 `avatar`)."""
    digest = hashlib.md5(email.strip().lower().encode(), usedforsecurity=False).hexdigest()
    return f"https://www.gravatar.com/avatar/{digest}?d=mp"


async def v3_get_user(request: Request) -> Response:
    """Return the user behind the token, unwrapped."""
    user = await teams.get_user(runtime(request), user_of(request))
    return json_response(
        V3UserResource(
            uuid=user["uuid"],
            id=user["id"],
            name=user["name"],
            email=user["email"],
            avatar=gravatar(user["email"]),
            created_at=format_timestamp(user["created_at"]) or "",
            updated_at=format_timestamp(user["updated_at"]) or "",
        )
    )


async def v3_list_teams(request: Request) -> Response:
    """Return every team the user belongs to."""
    rows = await teams.list_teams_of_user(runtime(request), user_of(request))
    return envelope([team_resource(row) for row in rows])


async def v3_create_team(request: Request) -> Response:
    """Create a team owned by the caller (`name`, `email`)."""
    body = CREATE_TEAM.read(await json_body(request))
    team = await teams.create_team(
        runtime(request), user_of(request), name=body.name, email=body.email, type_=body.type or "Other"
    )
    return envelope(team_resource(team), 201)


ENDPOINTS = [
    Endpoint(
        "GET",
        f"{V3}/user",
        v3_get_user,
        "Get the current user",
        "v3 Users",
        response=V3UserResource,
        shape="raw",
        guard=authenticated,
    ),
    Endpoint(
        "GET",
        f"{V3}/teams",
        v3_list_teams,
        "Get teams",
        "v3 Teams",
        response=TeamResource,
        shape="list",
        guard=authenticated,
    ),
    Endpoint(
        "POST",
        f"{V3}/teams",
        v3_create_team,
        "Create a team",
        "v3 Teams",
        body=CREATE_TEAM,
        response=TeamResource,
        status=201,
        errors=(422,),
        guard=authenticated,
    ),
]
