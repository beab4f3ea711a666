"""Energy used: a site's history per bucket (R-96..R-98) and a connector's live usage (R-100..R-102).

History comes from the writer's 15-minute rollups in whole Wh, scoped by the team and site
stamped on them when written, narrowed to a group of the site (with its sub-groups) or to a
charger. A period is at most 31 days of 15-minute buckets, 92 of hours, 366 of days, its dates
in the site's timezone (UTC while it has none). Live usage reads the latest values per phase.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.domain.energy import Interval, local_midnight
from voltline.domain.ids import ChargerId, GroupId, Ref, SiteId, TeamId
from voltline.domain.power import Usage
from voltline.errors import NotFoundError, ValidationError
from voltline.services.runtime import Runtime
from voltline.services.transactions import find_site_charger
from voltline.store import chargers, groups, sites, usage
from voltline.store.power_usage import read_usages
from voltline.store.usage import Key

MAX_DAYS: dict[Interval, int] = {"15m": 31, "hour": 92, "day": 366}
# Local midnights must stay representable in UTC (datetime's years 1..9999).
EARLIEST, LATEST = date(1900, 1, 1), date(9998, 12, 31)
GROUP_INVALID = "The selected group is invalid."


@dataclass(frozen=True, slots=True)
class SiteUsage:
    """A site's rollups over a period: Wh per 15-minute bucket start (naive UTC), and the site's timezone."""

    timezone: str
    zone: tzinfo
    rollups: dict[datetime, int]


def check_period(first: date, last: date, interval: Interval) -> None:
    """Raise ValidationError for a period out of range, reversed, or too long for its interval."""
    if first < EARLIEST:
        raise ValidationError.single("from", f"The from field must be a date after or equal to {EARLIEST}.")
    if last > LATEST:
        raise ValidationError.single("to", f"The to field must be a date before or equal to {LATEST}.")
    if last < first:
        raise ValidationError.single("to", "The to field must be a date after or equal to from.")
    if (last - first).days + 1 > MAX_DAYS[interval]:
        message = f"The period must not be longer than {MAX_DAYS[interval]} days for interval {interval}."
        raise ValidationError.single("to", message)


def site_zone(name: str | None) -> tuple[str, tzinfo]:
    """The site's timezone (R-98: buckets in the site timezone), UTC while it has none."""
    try:
        return (name, zoneinfo.ZoneInfo(name)) if name else ("UTC", zoneinfo.ZoneInfo("UTC"))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return "UTC", zoneinfo.ZoneInfo("UTC")


async def _group_keys(conn: AsyncConnection, site_id: SiteId, ref: Ref | None) -> set[Key] | None:
    if ref is None:
        return None
    try:
        group = await groups.get_group(conn, site_id, ref)
    except NotFoundError:
        raise ValidationError.single("group", GROUP_INVALID) from None
    return await usage.list_group_connector_keys(conn, site_id, GroupId(group["id"]))


async def require_site_group(runtime: Runtime, team_id: TeamId, site: Ref, group: Ref | None) -> None:
    """Raise as `get_site_usage` would for the site and the group alone (NotFoundError, ValidationError)."""
    async with runtime.db.read() as conn:
        await _group_keys(conn, await sites.get_site_id(conn, team_id, site), group)


async def get_site_usage(
    runtime: Runtime,
    team_id: TeamId,
    site: Ref,
    *,
    first: date,
    last: date,
    interval: Interval,
    group: Ref | None,
    charger: Ref | None,
) -> SiteUsage:
    """The rollups of the site's connectors (or the group's, or the charger's) from `first` to `last`, local dates."""
    async with runtime.db.scan() as conn:
        row = await sites.get_site(conn, team_id, site)
        site_id = SiteId(row["id"])
        keys = await _group_keys(conn, site_id, group)
        charger_id = await find_site_charger(conn, team_id, site_id, charger)
        check_period(first, last, interval)
        name, zone = site_zone(row["timezone"])
        start, end = local_midnight(first, zone), local_midnight(last + timedelta(days=1), zone)
        rollups = await usage.sum_rollups(
            conn, team_id, site_id, start, end, charger_id=charger_id, connector_keys=keys
        )
    return SiteUsage(name, zone, rollups)


async def get_site_connector_usage(runtime: Runtime, team_id: TeamId, site: Ref, connector: Ref) -> Usage:
    """The live usage of a connector of the team's site, by its row id or uuid."""
    async with runtime.db.read() as conn:
        site_id = await sites.get_site_id(conn, team_id, site)
        row = await chargers.get_site_connector(conn, site_id, connector)
        wanted = [(ChargerId(row["charger_id"]), row["connector_id"], row["phases"])]
        return (await read_usages(conn, wanted, runtime.clock.now()))[0]


async def get_charger_connector_usage(runtime: Runtime, team_id: TeamId, charger: Ref, number: int) -> Usage:
    """The live usage of the team's charger's connector by OCPP number (0: the charger as a whole)."""
    async with runtime.db.read() as conn:
        charger_id = ChargerId((await chargers.get_charger(conn, team_id, charger))["id"])
        phases = {
            row["connector_id"]: row["phases"] for row in await chargers.list_charger_connectors(conn, charger_id)
        }
        if number != 0 and number not in phases:
            raise NotFoundError("connector")
        return (await read_usages(conn, [(charger_id, number, phases.get(number, 3))], runtime.clock.now()))[0]
