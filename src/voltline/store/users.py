"""Users, their teams and their API tokens."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.domain.ids import Ref, TeamId, UserId
from voltline.errors import ConflictError, NotFoundError
from voltline.store._common import new_uuid, ref_clause, stamped, utcnow
from voltline.store.schema import api_tokens, team_members, teams, users


async def create_user(conn: AsyncConnection, *, name: str, email: str) -> RowMapping:
    """Insert a user and their personal team (as Jetstream does); conflict if the email is taken."""
    if await get_user_by_email(conn, email) is not None:
        raise ConflictError(f"A user with email {email} already exists.")
    result = await conn.execute(
        insert(users)
        .values(stamped({"uuid": new_uuid(), "name": name, "email": email.lower()}, created=True))
        .returning(*users.c)
    )
    user = result.mappings().one()
    await create_team(
        conn, owner_id=UserId(user["id"]), name=f"{name}'s Team", email=email.lower(), type_="Personal", personal=True
    )
    return user


async def get_user(conn: AsyncConnection, user_id: UserId) -> RowMapping:
    """One user by id."""
    row = (await conn.execute(select(users).where(users.c.id == user_id))).mappings().first()
    if row is None:
        raise NotFoundError("user")
    return row


async def get_user_by_email(conn: AsyncConnection, email: str) -> RowMapping | None:
    """One user by email (case-insensitive), or None."""
    query = select(users).where(users.c.email == email.lower())
    return (await conn.execute(query)).mappings().first()


async def create_team(
    conn: AsyncConnection, *, owner_id: UserId, name: str, email: str | None, type_: str, personal: bool = False
) -> RowMapping:
    """Insert a team owned by the user, who becomes its first member."""
    values = {
        "uuid": new_uuid(),
        "name": name,
        "email": email,
        "type": type_,
        "is_personal_team": personal,
        "owner_id": owner_id,
        "authorization_mode": "accept_all",
    }
    team = (
        (await conn.execute(insert(teams).values(stamped(values, created=True)).returning(*teams.c))).mappings().one()
    )
    await conn.execute(
        insert(team_members).values(team_id=team["id"], user_id=owner_id, role="owner", created_at=utcnow())
    )
    return team


async def list_teams_of_user(conn: AsyncConnection, user_id: UserId) -> list[RowMapping]:
    """Every team the user is a member of, oldest first."""
    query = (
        select(teams)
        .join(team_members, team_members.c.team_id == teams.c.id)
        .where(team_members.c.user_id == user_id)
        .order_by(teams.c.id)
    )
    return list((await conn.execute(query)).mappings().all())


async def get_member_team_id(conn: AsyncConnection, user_id: UserId, ref: Ref) -> TeamId | None:
    """The team's id if `ref` names a team the user belongs to, else None."""
    query = (
        select(teams.c.id)
        .join(team_members, team_members.c.team_id == teams.c.id)
        .where(team_members.c.user_id == user_id, ref_clause(teams, ref))
    )
    team_id = await conn.scalar(query)
    return None if team_id is None else TeamId(team_id)


async def get_member_role(conn: AsyncConnection, user_id: UserId, team_id: TeamId) -> str | None:
    """The user's role in the team (`owner`, `member`), or None when not a member."""
    query = select(team_members.c.role).where(team_members.c.team_id == team_id, team_members.c.user_id == user_id)
    role = await conn.scalar(query)
    return None if role is None else str(role)


async def get_team(conn: AsyncConnection, team_id: TeamId) -> RowMapping:
    """One team by id."""
    row = (await conn.execute(select(teams).where(teams.c.id == team_id))).mappings().first()
    if row is None:
        raise NotFoundError("team")
    return row


async def get_team_by_ref(conn: AsyncConnection, ref: Ref) -> RowMapping | None:
    """One team by id or uuid, or None."""
    return (await conn.execute(select(teams).where(ref_clause(teams, ref)))).mappings().first()


async def update_team(conn: AsyncConnection, team_id: TeamId, values: dict[str, Any]) -> RowMapping:
    """Change a team's fields."""
    await conn.execute(update(teams).where(teams.c.id == team_id).values(stamped(values)))
    return await get_team(conn, team_id)


async def insert_api_token(conn: AsyncConnection, user_id: UserId, name: str, token_hash: str) -> int:
    """Store a token's hash; returns the token's id."""
    values = stamped({"user_id": user_id, "name": name, "token_hash": token_hash}, created=True)
    return int(await conn.scalar(insert(api_tokens).values(values).returning(api_tokens.c.id)) or 0)


async def get_active_token(conn: AsyncConnection, token_hash: str) -> RowMapping | None:
    """The unrevoked token with this hash and its user's email, or None."""
    query = (
        select(api_tokens.c.id, api_tokens.c.user_id, users.c.email)
        .join(users, users.c.id == api_tokens.c.user_id)
        .where(api_tokens.c.token_hash == token_hash, api_tokens.c.revoked_at.is_(None))
    )
    return (await conn.execute(query)).mappings().first()


async def list_api_tokens(conn: AsyncConnection, user_id: UserId) -> list[RowMapping]:
    """A user's tokens, newest first, without hashes."""
    query = (
        select(api_tokens.c.id, api_tokens.c.name, api_tokens.c.created_at, api_tokens.c.revoked_at)
        .where(api_tokens.c.user_id == user_id)
        .order_by(api_tokens.c.id.desc())
    )
    return list((await conn.execute(query)).mappings().all())


async def revoke_api_token(conn: AsyncConnection, token_id: int) -> bool:
    """Revoke a token by id; False when there was no such live token."""
    result = await conn.execute(
        update(api_tokens)
        .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=utcnow(), updated_at=utcnow())
    )
    return bool(result.rowcount)
