"""Whether a presented id tag may charge (OCPP 1.6 §4.1 Authorize), by the team's mode and stored tags."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.domain.authorization import StoredTag, Verdict, authorize
from voltline.domain.ids import TeamId
from voltline.services.runtime import Runtime
from voltline.store import ocpp_state
from voltline.store.id_tags import find_id_tag


async def authorize_id_tag(runtime: Runtime, team_id: TeamId | None, id_tag: str) -> Verdict:
    """The verdict on an id tag a charger of the team presents (a charger of no team accepts every tag)."""
    async with runtime.db.read() as conn:
        return await check_id_tag(conn, team_id, id_tag, runtime.clock.now())


async def check_id_tag(conn: AsyncConnection, team_id: TeamId | None, id_tag: str, now: datetime) -> Verdict:
    """The verdict on an id tag within the caller's transaction (StartTransaction decides in its own)."""
    mode = await ocpp_state.get_authorization_mode(conn, team_id)
    row = None if team_id is None else await find_id_tag(conn, team_id, id_tag)
    stored = None if row is None else StoredTag(row["status"], row["expiry_date"], row["parent_id_tag"])
    return authorize(mode, stored, now)
