"""The objects a user reaches through their teams: the v3 front-end's scoping (DESIGN "v3 API").

v3 paths name chargers and sites by uuid with no team; each lookup finds the user's team that
owns the object, and the front-end then calls the same team-scoped services as v2 with it. An
object of a team the user is not in is a NotFoundError (404), exactly like an unknown uuid.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import RowMapping

from voltline.domain.ids import ChargerId, TeamId, UserId
from voltline.errors import NotFoundError, ValidationError
from voltline.services.runtime import Runtime
from voltline.store import chargers, reach, users
from voltline.store.meter_values import StoredSample

TEAM_INVALID = "The selected team is invalid."


@dataclass(frozen=True)
class Permissions:
    """What the caller may do with an object (spec v3 §1.6): basic, sensitive and full access."""

    basic: bool
    sensitive: bool
    full: bool


async def charger_team(rt: Runtime, user_id: UserId, uuid: str) -> TeamId:
    """The user's team owning the charger; NotFoundError for any other charger."""
    async with rt.db.read() as conn:
        team_id = await reach.team_of_charger(conn, user_id, uuid)
    if team_id is None:
        raise NotFoundError("charger")
    return team_id


async def site_team(rt: Runtime, user_id: UserId, uuid: str) -> TeamId:
    """The user's team owning the live site; NotFoundError for any other site."""
    async with rt.db.read() as conn:
        team_id = await reach.team_of_site(conn, user_id, uuid)
    if team_id is None:
        raise NotFoundError("site")
    return team_id


async def chosen_team(rt: Runtime, user_id: UserId, team_uuid: str | None, field: str) -> TeamId:
    """The user's team named by `team_uuid`, or the first one when none is named (spec v3 §1.6); 422 otherwise."""
    async with rt.db.read() as conn:
        if team_uuid is None:
            team_id = await reach.first_team(conn, user_id)
        else:
            team_id = await reach.team_by_uuid(conn, user_id, team_uuid.lower())
    if team_id is None:
        raise ValidationError.single(field, TEAM_INVALID)
    return team_id


async def permissions(rt: Runtime, user_id: UserId, team_id: TeamId) -> Permissions:
    """The caller's access to the team's objects: every member holds basic, sensitive and full access today."""
    async with rt.db.read() as conn:
        role = await users.get_member_role(conn, user_id, team_id)
    member = role is not None
    return Permissions(basic=member, sensitive=member, full=member)


async def list_chargers(rt: Runtime, user_id: UserId, *, offset: int, limit: int) -> list[RowMapping]:
    """A page of the chargers of every team of the user, oldest first."""
    async with rt.db.read() as conn:
        return await reach.list_chargers(conn, user_id, offset=offset, limit=limit)


async def list_sites(
    rt: Runtime, user_id: UserId, *, team_id: TeamId | None, search: str | None, offset: int, limit: int
) -> list[RowMapping]:
    """A page of the live sites of the user's teams (or of one), oldest first."""
    async with rt.db.read() as conn:
        return await reach.list_sites(conn, user_id, team_id=team_id, search=search, offset=offset, limit=limit)


async def latest_samples(rt: Runtime, team_id: TeamId, uuid: str, connector_number: int) -> list[StoredSample]:
    """The newest MeterValues frame's samples of the team's charger's connector (404: no such connector)."""
    async with rt.db.read() as conn:
        charger = await chargers.get_charger(conn, team_id, uuid)
        charger_id = ChargerId(charger["id"])
        numbers = {row["connector_id"] for row in await chargers.list_charger_connectors(conn, charger_id)}
        if connector_number not in numbers:
            raise NotFoundError("connector")
        return await reach.latest_frame(conn, team_id, charger_id, connector_number)


async def stop_transaction_id(rt: Runtime, charger_id: ChargerId, given: int | None) -> int | None:
    """The transaction `actions/stop` names: our id, else an active one's OCPP id (DESIGN "v3 API")."""
    if given is None:
        return None
    async with rt.db.read() as conn:
        if await reach.is_active_transaction(conn, charger_id, given):
            return given
        found = await reach.active_transaction_by_ocpp_id(conn, charger_id, str(given))
    return given if found is None else found


async def site_team_or_none(rt: Runtime, user_id: UserId, uuid: str) -> TeamId | None:
    """The user's team owning the live site, or None."""
    async with rt.db.read() as conn:
        return await reach.team_of_site(conn, user_id, uuid.lower())


@dataclass(frozen=True)
class CallLog:
    """A page of a charger's OCPP calls with their answers, and every method its log holds."""

    calls: list[tuple[RowMapping, RowMapping | None]]
    methods: list[str]


async def list_call_log(
    rt: Runtime, team_id: TeamId, uuid: str, wanted: reach.CallFilter, *, offset: int, limit: int
) -> CallLog:
    """Calls of the team's charger the team may read (v2's log rule: DESIGN Charger security), each with its answer."""
    async with rt.db.read() as conn:
        charger = await chargers.get_charger(conn, team_id, uuid)
        charger_id = ChargerId(charger["id"])
        calls = await reach.list_calls(
            conn, charger_id, team_id, charger["attached_at"], wanted, offset=offset, limit=limit
        )
        answers = await reach.answers_to(conn, charger_id, team_id, calls)
        methods = await reach.call_methods(conn, charger_id, team_id)
    paired = [(call, answers.get((str(call["direction"]), str(call["message_id"])))) for call in calls]
    return CallLog(paired, methods)
