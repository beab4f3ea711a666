"""Every endpoint declares its guard, `wrap()` enforces it before the handler, OpenAPI shows it.

api/auth.py: `public`, `authenticated` (a token, no team), `team_member` (a member of the
path's `{team}`), `team_owner` (a member whose role is `owner`).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert

from tests.conftest import LiveServer
from voltline import codec
from voltline.api import ENDPOINTS, build_routes
from voltline.api._routing import Endpoint
from voltline.api.auth import Guard
from voltline.api.openapi import build_openapi
from voltline.services.accounts import Account
from voltline.store.schema import team_members

DOC = codec.to_builtins(build_openapi(ENDPOINTS))
AUTHORIZATION = "/api/v2/teams/{team}/authorization"


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda ep: f"{ep.method} {ep.path}")
def test_every_endpoint_declares_a_guard_that_fits_its_path(endpoint: Endpoint) -> None:
    """A `{team}` path is guarded by team membership (or a role in it); any other path needs no team."""
    guard = endpoint.guard
    assert isinstance(guard, Guard), f"{endpoint} declares no guard"
    assert guard.team == ("{team}" in endpoint.path), guard.name


def test_a_route_table_with_an_unguarded_endpoint_is_refused() -> None:
    unguarded = dataclasses.replace(ENDPOINTS[0], guard=None)
    with pytest.raises(ValueError, match="declares no guard"):
        build_routes([unguarded])


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda ep: f"{ep.method} {ep.path}")
def test_the_document_shows_each_guard_and_its_security_requirement(endpoint: Endpoint) -> None:
    guard = endpoint.guard
    assert isinstance(guard, Guard)
    operation = DOC["paths"][endpoint.path][endpoint.method.lower()]
    assert operation["x-guard"] == guard.name
    assert operation.get("security") == ([{"bearerAuth": []}] if guard.token else None)
    assert ("403" in operation["responses"]) == guard.team


def _join_as_member(server: LiveServer, owner: Account, member: Account) -> None:
    async def join() -> None:
        async with server.runtime.db.write() as conn:
            row = {
                "team_id": owner.team_id,
                "user_id": member.user_id,
                "role": "member",
                "created_at": datetime.now(UTC).replace(tzinfo=None),
            }
            await conn.execute(insert(team_members).values(**row))

    server.run(join)


def test_only_the_owner_may_change_the_team_authorization_mode(server: LiveServer) -> None:
    """`team_owner` on PUT .../authorization: a plain member may read the mode, not change it."""
    [owner_ep] = [ep for ep in ENDPOINTS if ep.method == "PUT" and ep.path == AUTHORIZATION]
    assert owner_ep.guard is not None and owner_ep.guard.role == "owner"
    owner, member = server.account("Owner"), server.account("Member")
    _join_as_member(server, owner, member)
    path = AUTHORIZATION.format(team=owner.team_id)
    with server.client(member) as as_member, server.client(owner) as as_owner:
        assert as_member.get(path).json() == {"data": {"authorization_mode": "accept_all"}}
        refused = as_member.put(path, json={"authorization_mode": "allow_list"})
        assert (refused.status_code, refused.json()) == (403, {"message": "This action is unauthorized."})
        assert as_member.get(path).json()["data"]["authorization_mode"] == "accept_all"
        assert as_owner.put(path, json={"authorization_mode": "allow_list"}).status_code == 200
        assert as_member.get(path).json()["data"]["authorization_mode"] == "allow_list"


def test_a_member_is_refused_by_the_role_guard_before_the_body_is_read(server: LiveServer) -> None:
    """The guard runs before the handler: a member's invalid body is a 403, not a 422."""
    owner, member = server.account("Owner"), server.account("Member")
    _join_as_member(server, owner, member)
    with server.client(member) as as_member:
        response = as_member.put(AUTHORIZATION.format(team=owner.team_id), json={"authorization_mode": "nonsense"})
    assert response.status_code == 403
