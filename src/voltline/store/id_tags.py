"""Id tags (RFID cards) of a team, looked up case-insensitively as OCPP's CiString20Type demands."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.domain.ids import IdTagId, Ref, TeamId
from voltline.errors import ConflictError, NotFoundError
from voltline.store._common import new_uuid, ref_clause, stamped
from voltline.store.schema import id_tags

# The largest value an INTEGER column holds on PostgreSQL; larger refs name nothing.
MAX_ROW_ID = 2**31 - 1


class IdTagTakenError(ConflictError):
    """The team already has this id tag."""


# Built once: each Authorize and StartTransaction asks it, and a `func.lower(..)` expression built
# per call is a handful of objects in reference cycles, left to the garbage collector.
FIND_ID_TAG = (
    select(id_tags)
    .where(id_tags.c.team_id == bindparam("team_id"), func.lower(id_tags.c.id_tag) == bindparam("lowered"))
    .order_by(id_tags.c.id)
    .limit(1)
)


async def find_id_tag(conn: AsyncConnection, team_id: TeamId, id_tag: str) -> RowMapping | None:
    """The team's id tag with this value (case-insensitive), or None."""
    found = await conn.execute(FIND_ID_TAG, {"team_id": team_id, "lowered": id_tag.lower()})
    return found.mappings().first()


async def create_id_tag(conn: AsyncConnection, team_id: TeamId, id_tag: str, values: dict[str, Any]) -> RowMapping:
    """Insert an id tag for the team; IdTagTakenError when the team has it already."""
    if await find_id_tag(conn, team_id, id_tag) is not None:
        raise IdTagTakenError(f"The team already has id tag {id_tag!r}.")
    row = {"uuid": new_uuid(), "team_id": team_id, "id_tag": id_tag, "status": "Accepted", **values}
    try:
        new_id = await conn.scalar(insert(id_tags).values(stamped(row, created=True)).returning(id_tags.c.id))
    except IntegrityError:
        raise IdTagTakenError(f"The team already has id tag {id_tag!r}.") from None
    return await get_id_tag(conn, team_id, IdTagId(int(new_id or 0)))


async def get_id_tag(conn: AsyncConnection, team_id: TeamId, ref: Ref) -> RowMapping:
    """One id tag of the team by id or uuid; NotFoundError otherwise."""
    if isinstance(ref, int) and not 0 < ref <= MAX_ROW_ID:
        raise NotFoundError("id tag")
    query = select(id_tags).where(id_tags.c.team_id == team_id, ref_clause(id_tags, ref))
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        raise NotFoundError("id tag")
    return row


async def list_id_tags(conn: AsyncConnection, team_id: TeamId, *, offset: int, limit: int) -> list[RowMapping]:
    """A page of the team's id tags, oldest first."""
    query = select(id_tags).where(id_tags.c.team_id == team_id).order_by(id_tags.c.id).offset(offset).limit(limit)
    return list((await conn.execute(query)).mappings().all())


async def delete_id_tag(conn: AsyncConnection, team_id: TeamId, ref: Ref) -> RowMapping:
    """Remove one id tag of the team (the row removed); NotFoundError when the team has no such tag."""
    row = await get_id_tag(conn, team_id, ref)
    await conn.execute(delete(id_tags).where(id_tags.c.id == row["id"]))
    return row


async def update_id_tag(conn: AsyncConnection, team_id: TeamId, ref: Ref, values: dict[str, Any]) -> RowMapping:
    """Change some fields of one id tag of the team (the row after); NotFoundError when there is no such tag."""
    row = await get_id_tag(conn, team_id, ref)
    await conn.execute(update(id_tags).where(id_tags.c.id == row["id"]).values(stamped(values)))
    return await get_id_tag(conn, team_id, IdTagId(int(row["id"])))
