"""Connectors of the chargers on a site: listing, and the settings load balancing needs (limits, phases, group)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.bus.events import publish_settings_changed
from voltline.domain.ids import ConnectorId, GroupId, Ref, SiteId, TeamId
from voltline.errors import NotFoundError, ValidationError
from voltline.services import audit
from voltline.services.runtime import Runtime
from voltline.store import chargers, groups, sites

GROUP_INVALID = "The selected group id is invalid."


def effective_group_id(connector: Mapping[str, Any]) -> GroupId | None:
    """The connector's own group, else its charger's (R-80)."""
    return chargers.effective_group_id(connector)


async def list_site_connectors(
    runtime: Runtime, team_id: TeamId, site_ref: Ref, *, offset: int, limit: int
) -> list[RowMapping]:
    """A page of the connectors of the chargers on the site, with their charger's summary."""
    async with runtime.db.read() as conn:
        site_id = await sites.get_site_id(conn, team_id, site_ref)
        return await chargers.list_site_connectors(conn, site_id, offset=offset, limit=limit)


async def _checked_group(conn: AsyncConnection, site_id: SiteId, group_id: int | None) -> None:
    if group_id is None:
        return
    try:
        if not 0 < group_id <= chargers.MAX_ROW_ID:
            raise NotFoundError("group")
        await groups.get_group(conn, site_id, group_id)
    except NotFoundError:
        raise ValidationError.single("group_id", GROUP_INVALID) from None


def _change(connector: Mapping[Any, Any], clean: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """`connector.limit_changed` when the maximum amperage changed (with old and new), else `connector.updated`."""
    detail = audit.changed_fields(clean)
    action = "connector.updated"
    if "max_amperage" in clean and clean["max_amperage"] != connector.get("max_amperage"):
        action = "connector.limit_changed"
        detail.update({"from": connector.get("max_amperage"), "to": clean["max_amperage"]})
    return action, detail


async def update_site_connector(
    runtime: Runtime, team_id: TeamId, site_ref: Ref, ref: Ref, check: Callable[[], dict[str, Any]]
) -> RowMapping:
    """Store the settings `check` returns once the connector is found; a group must be of the site."""
    async with runtime.db.write() as conn:
        site_id = await sites.get_site_id(conn, team_id, site_ref)
        connector = await chargers.get_site_connector(conn, site_id, ref)
        clean = check()
        await _checked_group(conn, site_id, clean.get("group_id"))
        row = await chargers.update_connector(conn, site_id, ConnectorId(connector["id"]), clean)
        action, detail = _change(connector, clean)
        await audit.record(runtime.clock, conn, team_id, action, ("connector", connector["uuid"]), detail=detail)
    await publish_settings_changed(runtime.bus, site_id)
    return row
