"""What a user reaches through the teams they belong to (DESIGN "v3 API": the token is a user's).

The v3 front-end names objects by uuid with no team in the path; these reads find the team of
the user that owns the object (a team the user is not in owns nothing they can see).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.domain.ids import ChargerId, TeamId, UserId
from voltline.store.meter_values import StoredSample, expand_frame
from voltline.store.schema import chargers, meter_frames, ocpp_messages, sites, team_members, teams, transactions
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


@dataclass(frozen=True)
class CallFilter:
    """What a v3 log list is narrowed to (spec volttime-v3 §3.12); None means any."""

    method: str | None = None
    status: str | None = None  # pending | done | failed
    direction: str | None = None  # "in": to the central system, "out": to the charger
    hidden: tuple[str, ...] = ()
    date_from: datetime | None = None
    date_to: datetime | None = None
    newest_first: bool = True


def _answer(call: Any, message_type: int | None) -> Any:
    """EXISTS an answer (CALLRESULT 3 or CALLERROR 4; any when None) to the call, logged for the same team."""
    answer = ocpp_messages.alias("answer")
    where = [
        answer.c.charger_id == call.c.charger_id,
        answer.c.team_id == call.c.team_id,
        answer.c.message_id == call.c.message_id,
        answer.c.direction != call.c.direction,
        answer.c.message_type.in_((3, 4) if message_type is None else (message_type,)),
    ]
    return exists().where(*where)


async def list_calls(
    conn: AsyncConnection,
    charger_id: ChargerId,
    team_id: TeamId,
    since: datetime | None,
    wanted: CallFilter,
    *,
    offset: int,
    limit: int,
) -> list[RowMapping]:
    """A page of the OCPP calls (message type 2) the team may read (as v2's log: DESIGN Charger security)."""
    call = ocpp_messages
    where: list[ColumnElement[bool]] = [call.c.charger_id == charger_id, call.c.team_id == team_id]
    where.append(call.c.message_type == 2)
    if since is not None:
        where.append(call.c.created_at >= since)
    if wanted.method is not None:
        where.append(call.c.action == wanted.method)
    if wanted.direction is not None:
        where.append(call.c.direction == wanted.direction)
    if wanted.hidden:
        where.append(call.c.action.not_in(wanted.hidden))
    if wanted.date_from is not None:
        where.append(call.c.created_at >= wanted.date_from)
    if wanted.date_to is not None:
        where.append(call.c.created_at <= wanted.date_to)
    if wanted.status == "done":
        where.append(_answer(call, 3))
    elif wanted.status == "failed":
        where.append(_answer(call, 4))
    elif wanted.status == "pending":
        where.append(~_answer(call, None))
    order = call.c.id.desc() if wanted.newest_first else call.c.id.asc()
    query = select(call).where(*where).order_by(order).offset(offset).limit(limit)
    return list((await conn.execute(query)).mappings().all())


async def answers_to(
    conn: AsyncConnection, charger_id: ChargerId, team_id: TeamId, calls: Sequence[RowMapping]
) -> dict[tuple[str, str], RowMapping]:
    """The answers to the calls, by (the call's direction, message id)."""
    if not calls:
        return {}
    query = select(ocpp_messages).where(
        ocpp_messages.c.charger_id == charger_id,
        ocpp_messages.c.team_id == team_id,
        ocpp_messages.c.message_type.in_((3, 4)),
        ocpp_messages.c.message_id.in_(sorted({str(c["message_id"]) for c in calls})),
    )
    found: dict[tuple[str, str], RowMapping] = {}
    for row in (await conn.execute(query.order_by(ocpp_messages.c.id))).mappings():
        called_from = "out" if row["direction"] == "in" else "in"
        found.setdefault((called_from, str(row["message_id"])), row)
    return found


async def call_methods(conn: AsyncConnection, charger_id: ChargerId, team_id: TeamId) -> list[str]:
    """Every OCPP action logged as a call of the charger for the team, sorted."""
    query = select(ocpp_messages.c.action).where(
        ocpp_messages.c.charger_id == charger_id,
        ocpp_messages.c.team_id == team_id,
        ocpp_messages.c.message_type == 2,
        ocpp_messages.c.action.is_not(None),
    )
    return sorted({str(action) for (action,) in await conn.execute(query.distinct())})
