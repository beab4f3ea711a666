"""Load-balancing groups of a site: a tree under the root group (the main fuse), and the chargers in them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.bus.events import publish_settings_changed
from voltline.domain.groups import find_root, is_valid_parent
from voltline.domain.ids import GroupId, MeterId, Ref, SiteId, TeamId
from voltline.errors import ValidationError
from voltline.services import audit
from voltline.services.runtime import Runtime
from voltline.store import groups, sites
from voltline.store.chargers import MAX_ROW_ID

INVALID_PARENT = "The selected group id is invalid."
INVALID_METER = "The selected meter id is invalid."
INVALID_CHARGER = "The selected charger is invalid."
ROOT_NOT_DELETABLE = "The root group cannot be deleted."


@dataclass
class GroupInput:
    """A group's fields as the front-end checked them: the valid values, the rule errors, and the field order."""

    values: dict[str, Any]
    errors: dict[str, list[str]] = field(default_factory=dict)
    fields: tuple[str, ...] = ()


async def _parent(
    conn: AsyncConnection, site_id: SiteId, parent: GroupId | None, group: RowMapping | None
) -> tuple[GroupId | None, bool]:
    """The parent to store (null means the root, except for the root itself) and whether it is allowed."""
    parents = await groups.get_parent_map(conn, site_id)
    if parent is None and (group is None or group["group_id"] is not None):
        parent = find_root(parents)
    return parent, is_valid_parent(parents, None if group is None else GroupId(group["id"]), parent)


async def _checked_values(
    conn: AsyncConnection, team_id: TeamId, site_id: SiteId, given: GroupInput, group: RowMapping | None
) -> dict[str, Any]:
    """The group's new values, or a ValidationError with every rule and lookup failure in field order."""
    clean, errors = dict(given.values), dict(given.errors)
    if "group_id" in clean or group is None:
        clean["group_id"], valid = await _parent(conn, site_id, clean.get("group_id"), group)
        if not valid:
            errors["group_id"] = [INVALID_PARENT]
    meter = clean.get("meter_id")
    if meter is not None and not (
        0 < meter <= MAX_ROW_ID and await groups.team_has_meter(conn, team_id, MeterId(meter))
    ):
        errors["meter_id"] = [INVALID_METER]
    if errors:
        raise ValidationError({name: errors[name] for name in given.fields if name in errors})
    if "method" in clean and clean["method"] is None:
        clean["method"] = "boost"
    return clean


def _detail(values: dict[str, Any]) -> dict[str, Any]:
    """The changed field names, and the capacity when it changed (the limit balancing works with)."""
    detail = audit.changed_fields(values)
    if "total_amps" in values:
        detail["total_amps"] = values["total_amps"]
    return detail


async def list_groups(runtime: Runtime, team_id: TeamId, site_ref: Ref, *, offset: int, limit: int) -> list[RowMapping]:
    """A page of the site's groups, the root first."""
    async with runtime.db.read() as conn:
        site_id = await sites.get_site_id(conn, team_id, site_ref)
        return await groups.list_groups(conn, site_id, offset=offset, limit=limit)


async def create_group(runtime: Runtime, team_id: TeamId, site_ref: Ref, given: GroupInput) -> RowMapping:
    """Create a group under a parent of the same site (default: the root group)."""
    async with runtime.db.write() as conn:
        site_id = await sites.get_site_id(conn, team_id, site_ref)
        values = await _checked_values(conn, team_id, site_id, given, None)
        row = await groups.create_group(conn, site_id, values)
        await audit.record(
            runtime.clock, conn, team_id, "group.created", ("group", row["uuid"]), detail=_detail(values)
        )
    await publish_settings_changed(runtime.bus, site_id)
    return row


async def get_group(runtime: Runtime, team_id: TeamId, site_ref: Ref, ref: Ref) -> RowMapping:
    """One group of the site; NotFoundError otherwise."""
    async with runtime.db.read() as conn:
        site_id = await sites.get_site_id(conn, team_id, site_ref)
        return await groups.get_group(conn, site_id, ref)


async def update_group(runtime: Runtime, team_id: TeamId, site_ref: Ref, ref: Ref, given: GroupInput) -> RowMapping:
    """Change the fields given; a new parent must not be the group itself or below it."""
    async with runtime.db.write() as conn:
        site_id = await sites.get_site_id(conn, team_id, site_ref)
        group = await groups.get_group(conn, site_id, ref)
        values = await _checked_values(conn, team_id, site_id, given, group)
        row = await groups.update_group(conn, site_id, GroupId(group["id"]), values)
        await audit.record(
            runtime.clock, conn, team_id, "group.updated", ("group", row["uuid"]), detail=_detail(values)
        )
    await publish_settings_changed(runtime.bus, site_id)
    return row


async def delete_group(runtime: Runtime, team_id: TeamId, site_ref: Ref, ref: Ref) -> None:
    """Delete a group; its child groups, chargers and connectors move to its parent (the root stays)."""
    async with runtime.db.write() as conn:
        site_id = await sites.get_site_id(conn, team_id, site_ref)
        group = await groups.get_group(conn, site_id, ref)
        if group["group_id"] is None:
            raise ValidationError.single("group", ROOT_NOT_DELETABLE)
        await groups.delete_group(conn, group)
        await audit.record(runtime.clock, conn, team_id, "group.deleted", ("group", group["uuid"]))
    await publish_settings_changed(runtime.bus, site_id)


async def assign_charger(
    runtime: Runtime, team_id: TeamId, site_ref: Ref, ref: Ref, charger: Callable[[], Ref | None]
) -> RowMapping:
    """Put the charger `charger` names (checked once the group is found) in the group; its connectors follow."""
    async with runtime.db.write() as conn:
        site_id = await sites.get_site_id(conn, team_id, site_ref)
        group = await groups.get_group(conn, site_id, ref)
        charger_ref = charger()
        charger_id = None if charger_ref is None else await groups.get_site_charger_id(conn, site_id, charger_ref)
        if charger_id is None:
            raise ValidationError.single("charger", INVALID_CHARGER)
        await groups.assign_charger(conn, GroupId(group["id"]), charger_id)
        detail = {"charger_id": charger_id}
        await audit.record(
            runtime.clock, conn, team_id, "group.charger_assigned", ("group", group["uuid"]), detail=detail
        )
    await publish_settings_changed(runtime.bus, site_id)
    return group
