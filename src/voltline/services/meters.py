"""Meters of a team and the meter of a group (spec/volttime-api.md §2.G, A14, R-103/R-104).

A meter's reading is its posted one or, for a meter linked to a charger of the team, that
charger's connector-0 reading, whichever is newer. A group without a meter of the team has a
virtual one: the live usage of its connectors and those of its sub-groups, summed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.domain.groups import list_descendants
from voltline.domain.ids import ChargerId, GroupId, MeterId, Ref, SiteId, TeamId
from voltline.domain.power import MeterReading, MeterTotals, charger_reading, meter_totals, newer_reading, sum_usages
from voltline.errors import NotFoundError, ValidationError
from voltline.services import audit
from voltline.services.runtime import Runtime
from voltline.store import groups, meters, sites
from voltline.store.power_usage import list_group_connectors, list_readings, read_usages

METER_TYPES = ("ct_meter", "p1_meter")
INVALID_CHARGER = "The selected charger id is invalid."


async def meter_totals_of(conn: AsyncConnection, team_id: TeamId, rows: Sequence[RowMapping]) -> dict[int, MeterTotals]:
    """Each meter's view: its posted reading or its charger's connector-0 reading, whichever is newer."""
    posted = await meters.list_readings(conn, [row["id"] for row in rows])
    linked = {row["charger_id"] for row in rows if row["charger_id"] is not None}
    own = await meters.list_team_charger_ids(conn, team_id, linked)
    samples = await list_readings(conn, own, connector_number=0)
    totals = {}
    for row in rows:
        from_charger = charger_reading(samples.get((row["charger_id"], 0), [])) if row["charger_id"] in own else None
        totals[row["id"]] = meter_totals(newer_reading(posted.get(MeterId(row["id"])), from_charger))
    return totals


async def get_team_meter(conn: AsyncConnection, team_id: TeamId, meter_id: int | None) -> RowMapping | None:
    """The meter of the team with this id; None without one (a meter of another team never counts)."""
    if meter_id is None:
        return None
    try:
        return await meters.get_meter(conn, team_id, meter_id)
    except NotFoundError:
        return None


async def list_meters(
    runtime: Runtime, team_id: TeamId, *, offset: int, limit: int
) -> tuple[list[RowMapping], dict[int, MeterTotals], bool]:
    """A page of the team's meters with their readings, and whether more follow."""
    async with runtime.db.read() as conn:
        rows = await meters.list_meters(conn, team_id, offset=offset, limit=limit + 1)
        return rows[:limit], await meter_totals_of(conn, team_id, rows[:limit]), len(rows) > limit


async def create_meter(
    runtime: Runtime, team_id: TeamId, values: dict[str, Any], errors: dict[str, list[str]]
) -> tuple[RowMapping, MeterTotals]:
    """Create a meter (type ct_meter unless given), measured by a charger of the team when one is named.

    `errors` are the rule errors of the input so far, by field in rule order; a charger that is
    not the team's joins them (Laravel's `exists`)."""
    errors = dict(errors)
    charger_id = values.get("charger_id")
    async with runtime.db.write() as conn:
        if charger_id is not None and not await meters.team_has_charger(conn, team_id, charger_id):
            errors["charger_id"] = [INVALID_CHARGER]
        if errors:
            raise ValidationError(errors)
        row = await meters.create_meter(
            conn, team_id, {"type": values.get("type") or METER_TYPES[0], "charger_id": charger_id}
        )
        await audit.record(
            runtime.clock, conn, team_id, "meter.created", ("meter", row["uuid"]), detail={"type": row["type"]}
        )
        return row, (await meter_totals_of(conn, team_id, [row]))[row["id"]]


async def post_meter_reading(
    runtime: Runtime, team_id: TeamId, ref: Ref, reading: Callable[[datetime], MeterReading]
) -> tuple[RowMapping, MeterTotals]:
    """Record the reading `reading` makes (checked once the meter is found); an older one than held is ignored."""
    async with runtime.db.write() as conn:
        row = await meters.get_meter(conn, team_id, ref)
        await meters.save_reading(conn, MeterId(row["id"]), reading(runtime.clock.now()))
        return row, (await meter_totals_of(conn, team_id, [row]))[row["id"]]


async def _virtual_totals(conn: AsyncConnection, site_id: SiteId, group_id: GroupId, now: datetime) -> MeterTotals:
    parents = await groups.get_parent_map(conn, site_id)
    members = {group_id, *list_descendants(parents, group_id)}
    rows = await list_group_connectors(conn, site_id, members)
    wanted = [(ChargerId(row["charger_id"]), row["connector_id"], row["phases"]) for row in rows]
    return sum_usages(await read_usages(conn, wanted, now))


async def get_group_meter(
    runtime: Runtime, team_id: TeamId, site_ref: Ref, group_ref: Ref
) -> tuple[RowMapping | None, MeterTotals]:
    """The group's meter and its reading, or None and the virtual sum of its connectors (R-103, R-104)."""
    async with runtime.db.scan() as conn:  # a big group reads many connectors: keep it off the event loop
        site_id = await sites.get_site_id(conn, team_id, site_ref)
        group = await groups.get_group(conn, site_id, group_ref)
        meter = await get_team_meter(conn, team_id, group["meter_id"])
        if meter is None:
            return None, await _virtual_totals(conn, site_id, GroupId(group["id"]), runtime.clock.now())
        return meter, (await meter_totals_of(conn, team_id, [meter]))[meter["id"]]
