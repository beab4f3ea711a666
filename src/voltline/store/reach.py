"""What a user reaches through the teams they belong to (DESIGN "v3 API": the token is a user's).

The v3 front-end names objects by uuid with no team in the path; these reads find the team of
the user that owns the object (a team the user is not in owns nothing they can see).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.domain.ids import ChargerId, TeamId, UserId
from voltline.store.meter_values import StoredSample, expand_frame
from voltline.store.schema import chargers, meter_frames, sites, team_members, teams, transactions
from voltline.store.sites import _CHARGERS_COUNT, _LIVE


def _member_teams(user_id: UserId) -> Any:
    return select(team_members.c.team_id).where(team_members.c.user_id == user_id).scalar_subquery()


async def team_of_charger(conn: AsyncConnection, user_id: UserId, uuid: str) -> TeamId | None:
    """The user's team that owns the charger with this uuid, or None."""
    query = select(chargers.c.team_id).where(chargers.c.uuid == uuid, chargers.c.team_id.in_(_member_teams(user_id)))
    found = await conn.scalar(query)
    return None if found is None else TeamId(found)


async def team_of_site(conn: AsyncConnection, user_id: UserId, uuid: str) -> TeamId | None:
    """The user's team that owns the live site with this uuid, or None."""
    query = select(sites.c.team_id).where(sites.c.uuid == uuid, _LIVE, sites.c.team_id.in_(_member_teams(user_id)))
    found = await conn.scalar(query)
    return None if found is None else TeamId(found)


async def team_by_uuid(conn: AsyncConnection, user_id: UserId, uuid: str) -> TeamId | None:
    """The id of the user's team with this uuid, or None."""
    query = select(teams.c.id).where(teams.c.uuid == uuid, teams.c.id.in_(_member_teams(user_id)))
    found = await conn.scalar(query)
    return None if found is None else TeamId(found)


async def first_team(conn: AsyncConnection, user_id: UserId) -> TeamId | None:
    """The user's first team (the oldest membership's, by team id)."""
    query = select(team_members.c.team_id).where(team_members.c.user_id == user_id).order_by(team_members.c.team_id)
    found = await conn.scalar(query.limit(1))
    return None if found is None else TeamId(found)


async def list_chargers(conn: AsyncConnection, user_id: UserId, *, offset: int, limit: int) -> list[RowMapping]:
    """A page of the chargers of every team of the user, oldest first."""
    query = (
        select(chargers)
        .where(chargers.c.team_id.in_(_member_teams(user_id)))
        .order_by(chargers.c.id)
        .offset(offset)
        .limit(limit)
    )
    return list((await conn.execute(query)).mappings().all())


async def list_sites(
    conn: AsyncConnection, user_id: UserId, *, team_id: TeamId | None, search: str | None, offset: int, limit: int
) -> list[RowMapping]:
    """A page of the live sites of the user's teams (or of one of them), oldest first; `search` in name or address."""
    where: list[ColumnElement[bool]] = [_LIVE, sites.c.team_id.in_(_member_teams(user_id))]
    if team_id is not None:
        where.append(sites.c.team_id == team_id)
    if search:
        pattern = f"%{search.lower()}%"
        columns = (sites.c.name, sites.c.street, sites.c.city, sites.c.postal_code)
        where.append(or_(*(column.ilike(pattern) for column in columns)))
    query = select(sites, _CHARGERS_COUNT).where(*where).order_by(sites.c.id).offset(offset).limit(limit)
    return list((await conn.execute(query)).mappings().all())


async def latest_frame(
    conn: AsyncConnection, team_id: TeamId, charger_id: ChargerId, connector_number: int
) -> list[StoredSample]:
    """The samples of the newest MeterValues frame of the connector stamped with the team (none: [])."""
    query = (
        select(meter_frames)
        .where(
            meter_frames.c.charger_id == charger_id,
            meter_frames.c.connector_number == connector_number,
            meter_frames.c.team_id == team_id,
        )
        .order_by(meter_frames.c.timestamp.desc(), meter_frames.c.id.desc())
        .limit(1)
    )
    row = (await conn.execute(query)).mappings().first()
    return [] if row is None else expand_frame(row)


async def active_transaction_by_ocpp_id(conn: AsyncConnection, charger_id: ChargerId, ocpp_id: str) -> int | None:
    """Our id of the charger's active transaction with this OCPP transaction id, or None."""
    query = select(transactions.c.id).where(
        transactions.c.charger_id == charger_id,
        transactions.c.ocpp_transaction_id == ocpp_id,
        transactions.c.status == "active",
    )
    found = await conn.scalar(query)
    return None if found is None else int(found)


async def is_active_transaction(conn: AsyncConnection, charger_id: ChargerId, transaction_id: int) -> bool:
    """Whether the charger has an active transaction with our id `transaction_id`."""
    query = select(transactions.c.id).where(
        transactions.c.charger_id == charger_id, transactions.c.id == transaction_id, transactions.c.status == "active"
    )
    return await conn.scalar(query) is not None
