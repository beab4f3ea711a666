"""A charger's OCPP message log as a team may read it (DESIGN: Charger security).

A team reads only the rows logged while it owned the charger, and none from before the
charger's current attachment (`chargers.attached_at`).
"""

from __future__ import annotations

from sqlalchemy.engine import RowMapping

from voltline.domain.ids import ChargerId, Ref, TeamId
from voltline.services.runtime import Runtime
from voltline.store import chargers, ocpp_log


async def list_charger_log(
    runtime: Runtime, team_id: TeamId, charger: Ref, *, action: str | None, offset: int, limit: int
) -> list[RowMapping]:
    """Up to `limit` frames of the team's charger from `offset`, newest first; `action` filters."""
    async with runtime.db.read() as conn:
        row = await chargers.get_charger(conn, team_id, charger)
        return await ocpp_log.list_team_log(
            conn, ChargerId(row["id"]), team_id, row["attached_at"], action=action, offset=offset, limit=limit
        )
