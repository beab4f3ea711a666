"""Teams and their users: the caller's user and teams, a new team, a team's id-tag authorization mode."""

from __future__ import annotations

from sqlalchemy.engine import RowMapping

from voltline.domain.ids import TeamId, UserId
from voltline.services import audit
from voltline.services.runtime import Runtime
from voltline.store import users


async def get_user(rt: Runtime, user_id: UserId) -> RowMapping:
    """One user by id."""
    async with rt.db.read() as conn:
        return await users.get_user(conn, user_id)


async def list_teams_of_user(rt: Runtime, user_id: UserId) -> list[RowMapping]:
    """Every team the user belongs to."""
    async with rt.db.read() as conn:
        return await users.list_teams_of_user(conn, user_id)


async def create_team(rt: Runtime, owner_id: UserId, *, name: str, email: str | None, type_: str) -> RowMapping:
    """A new team owned by the user."""
    async with rt.db.write() as conn:
        team = await users.create_team(conn, owner_id=owner_id, name=name, email=email, type_=type_)
        await audit.record(rt.clock, conn, team["id"], "team.created", ("team", team["uuid"]), detail={"type": type_})
    return team


async def get_authorization_mode(rt: Runtime, team_id: TeamId) -> str:
    """How the team's chargers authorize id tags: `accept_all` or `allow_list`."""
    async with rt.db.read() as conn:
        team = await users.get_team(conn, team_id)
    return str(team["authorization_mode"])


async def set_authorization_mode(rt: Runtime, team_id: TeamId, mode: str) -> str:
    """Set the team's id-tag authorization mode; the stored mode."""
    async with rt.db.write() as conn:
        team = await users.update_team(conn, team_id, {"authorization_mode": mode})
        detail = {"authorization_mode": mode}
        await audit.record(rt.clock, conn, team_id, "team.authorization_changed", ("team", team["uuid"]), detail=detail)
    return str(team["authorization_mode"])
