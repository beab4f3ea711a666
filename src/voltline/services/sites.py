"""Sites of a team: list, create, read, change and delete softly (with their root group)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import RowMapping

from voltline.bus.events import publish_settings_changed
from voltline.domain.ids import Ref, TeamId
from voltline.services import audit
from voltline.services.runtime import Runtime
from voltline.store import sites


async def list_sites(runtime: Runtime, team_id: TeamId, *, offset: int, limit: int) -> list[RowMapping]:
    """A page of the team's live sites, oldest first."""
    async with runtime.db.read() as conn:
        return await sites.list_sites(conn, team_id, offset=offset, limit=limit)


async def create_site(runtime: Runtime, team_id: TeamId, values: dict[str, Any]) -> RowMapping:
    """Create a site, and its root group sized by the main fuse."""
    async with runtime.db.write() as conn:
        row = await sites.create_site(conn, team_id, values)
        await audit.record(runtime.clock, conn, team_id, "site.created", ("site", row["uuid"]))
    return row


async def get_site(runtime: Runtime, team_id: TeamId, ref: Ref) -> RowMapping:
    """One live site of the team; NotFoundError otherwise."""
    async with runtime.db.read() as conn:
        return await sites.get_site(conn, team_id, ref)


async def update_site(runtime: Runtime, team_id: TeamId, ref: Ref, check: Callable[[], dict[str, Any]]) -> RowMapping:
    """Store the values `check` returns once the site is found (an unknown site fails before bad input)."""
    async with runtime.db.write() as conn:
        site_id = await sites.get_site_id(conn, team_id, ref)
        values = check()
        row = await sites.update_site(conn, team_id, site_id, values)
        await audit.record(
            runtime.clock, conn, team_id, "site.updated", ("site", row["uuid"]), detail=audit.changed_fields(values)
        )
    await publish_settings_changed(runtime.bus, site_id)
    return row


async def delete_site(runtime: Runtime, team_id: TeamId, ref: Ref) -> None:
    """Delete a site softly: it leaves every list and lookup, its chargers are detached."""
    async with runtime.db.write() as conn:
        site = await sites.get_site(conn, team_id, ref)
        await sites.delete_site(conn, team_id, site["id"])
        await audit.record(runtime.clock, conn, team_id, "site.deleted", ("site", site["uuid"]))
