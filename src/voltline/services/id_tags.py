"""Id tags (RFID cards) of a team, for its `allow_list` authorization mode."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import RowMapping

from voltline.bus.events import publish_id_tags_changed
from voltline.domain.ids import Ref, TeamId
from voltline.errors import ValidationError
from voltline.services import audit
from voltline.services.runtime import Runtime
from voltline.store import id_tags

ID_TAG_TAKEN = "The id tag has already been taken."


async def list_id_tags(rt: Runtime, team_id: TeamId, *, offset: int, limit: int) -> list[RowMapping]:
    """A page of the team's id tags."""
    async with rt.db.read() as conn:
        return await id_tags.list_id_tags(conn, team_id, offset=offset, limit=limit)


async def is_id_tag_taken(rt: Runtime, team_id: TeamId, id_tag: str) -> bool:
    """True when the team already has the id tag (compared case-insensitively)."""
    async with rt.db.read() as conn:
        return await id_tags.find_id_tag(conn, team_id, id_tag) is not None


async def create_id_tag(rt: Runtime, team_id: TeamId, id_tag: str, values: dict[str, Any]) -> RowMapping:
    """Add an id tag to the team (status, expiry, parent and name in `values`); 422 when it is taken."""
    async with rt.db.write() as conn:
        try:
            row = await id_tags.create_id_tag(conn, team_id, id_tag, values)
        except id_tags.IdTagTakenError:
            raise ValidationError.single("id_tag", ID_TAG_TAKEN) from None
        await audit.record(
            rt.clock, conn, team_id, "id_tag.created", ("id_tag", row["uuid"]), detail={"id_tag": id_tag}
        )
    await publish_id_tags_changed(rt.bus, team_id)
    return row


async def get_id_tag(rt: Runtime, team_id: TeamId, ref: Ref) -> RowMapping:
    """One id tag of the team; NotFoundError for any other."""
    async with rt.db.read() as conn:
        return await id_tags.get_id_tag(conn, team_id, ref)


async def update_id_tag(rt: Runtime, team_id: TeamId, ref: Ref, values: dict[str, Any]) -> RowMapping:
    """Change an id tag of the team (status, expiry, parent, name); the local lists follow (OCPP 1.6 §3.5.3)."""
    async with rt.db.write() as conn:
        row = await id_tags.update_id_tag(conn, team_id, ref, values)
        detail = {"id_tag": row["id_tag"], "fields": sorted(values)}
        await audit.record(rt.clock, conn, team_id, "id_tag.updated", ("id_tag", row["uuid"]), detail=detail)
    await publish_id_tags_changed(rt.bus, team_id)
    return row


async def delete_id_tag(rt: Runtime, team_id: TeamId, ref: Ref) -> None:
    """Remove an id tag of the team; NotFoundError for any other."""
    async with rt.db.write() as conn:
        row = await id_tags.delete_id_tag(conn, team_id, ref)
        detail = {"id_tag": row["id_tag"]}
        await audit.record(rt.clock, conn, team_id, "id_tag.deleted", ("id_tag", row["uuid"]), detail=detail)
    await publish_id_tags_changed(rt.bus, team_id)
