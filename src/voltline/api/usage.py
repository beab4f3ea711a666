"""Energy history of a site: kWh per 15 minutes, hour or day (spec/smart-charging.md §8.3, R-96..R-98).

`from` and `to` are `Y-m-d` dates in the site's timezone (UTC while it has none), both
included; `interval` is `15m`, `hour` or `day` (the default). Buckets follow the local clock,
so a DST day has 23 or 25 hourly buckets, and every bucket is listed, zeros included. `group`
(a group of the site, with its sub-groups) or `charger` (id or uuid) narrow the connectors.
Energy comes from the writer's 15-minute rollups in whole Wh; `kwh` is that as text with
three decimals. A period is at most 31 days of 15-minute buckets, 92 of hours, 366 of days.
"""

from __future__ import annotations

import asyncio
import zoneinfo
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from voltline.api._kit import input_data, json_response, path_ref
from voltline.api._routing import Endpoint
from voltline.api._rules import validate
from voltline.api.auth import runtime, scope
from voltline.api.transactions import charger_filter, input_ref
from voltline.domain.energy import INTERVALS, Interval, kwh_text, local_buckets, local_midnight, sum_into, to_local
from voltline.domain.ids import GroupId, SiteId
from voltline.errors import NotFoundError, ValidationError
from voltline.store import groups, sites, usage
from voltline.store.usage import Key

QUERY_RULES = {
    "from": "required|date_format:Y-m-d",
    "to": "required|date_format:Y-m-d",
    "interval": "nullable|in:" + ",".join(INTERVALS),
    "group": "nullable",
    "charger": "nullable",
}
MAX_DAYS: dict[Interval, int] = {"15m": 31, "hour": 92, "day": 366}
# Local midnights must stay representable in UTC (datetime's years 1..9999).
EARLIEST, LATEST = date(1900, 1, 1), date(9998, 12, 31)
GROUP_INVALID = "The selected group is invalid."
INLINE_ROWS = 2_000


class UsageBucket(msgspec.Struct):
    """The energy of one bucket: local start and end with their UTC offset, and kWh."""

    start: str
    end: str
    kwh: str


class UsageMeta(msgspec.Struct):
    """What the buckets cover."""

    timezone: str
    interval: Interval
    date_from: str = msgspec.field(name="from")
    date_to: str = msgspec.field(name="to")
    total_kwh: str


class UsageResponse(msgspec.Struct):
    """`{"data": [buckets], "meta": {...}}`."""

    data: list[UsageBucket]
    meta: UsageMeta


def _period(clean: dict[str, Any]) -> tuple[date, date, Interval]:
    first, last = date.fromisoformat(clean["from"]), date.fromisoformat(clean["to"])
    interval: Interval = clean.get("interval") or "day"
    if first < EARLIEST:
        raise ValidationError.single("from", f"The from field must be a date after or equal to {EARLIEST}.")
    if last > LATEST:
        raise ValidationError.single("to", f"The to field must be a date before or equal to {LATEST}.")
    if last < first:
        raise ValidationError.single("to", "The to field must be a date after or equal to from.")
    if (last - first).days + 1 > MAX_DAYS[interval]:
        message = f"The period must not be longer than {MAX_DAYS[interval]} days for interval {interval}."
        raise ValidationError.single("to", message)
    return first, last, interval


def site_zone(name: str | None) -> tuple[str, tzinfo]:
    """The site's timezone (R-98: buckets in the site timezone), UTC while it has none."""
    try:
        return (name, zoneinfo.ZoneInfo(name)) if name else ("UTC", zoneinfo.ZoneInfo("UTC"))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return "UTC", zoneinfo.ZoneInfo("UTC")


async def _group_keys(conn: AsyncConnection, site_id: SiteId, value: Any) -> set[Key] | None:
    ref = input_ref(value, "group", GROUP_INVALID)
    if ref is None:
        return None
    try:
        group = await groups.get_group(conn, site_id, ref)
    except NotFoundError:
        raise ValidationError.single("group", GROUP_INVALID) from None
    return await usage.list_group_connector_keys(conn, site_id, GroupId(group["id"]))


def usage_body(rollups: dict[datetime, int], zone: tzinfo, meta: UsageMeta) -> UsageResponse:
    """Every local bucket of the period with its kWh, and the total (pure; may run in a thread)."""
    first, last = date.fromisoformat(meta.date_from), date.fromisoformat(meta.date_to)
    bounds = local_buckets(first, last, zone, meta.interval)
    totals = sum_into(bounds, rollups)
    local = [to_local(bound, zone).isoformat() for bound in bounds]
    data = [UsageBucket(local[i], local[i + 1], kwh_text(wh)) for i, wh in enumerate(totals)]
    meta.total_kwh = kwh_text(sum(totals))
    return UsageResponse(data, meta)


async def get_site_usage(request: Request) -> Response:
    """Return the site's energy per bucket in the site's timezone, every bucket listed (zeros included)."""
    data = await input_data(request)
    team_id = scope(request).team_id
    async with runtime(request).db.scan() as conn:
        site = await sites.get_site(conn, team_id, path_ref(request, "site"))
        site_id = SiteId(site["id"])
        clean = validate(data, QUERY_RULES)
        group = await _group_keys(conn, site_id, clean.get("group"))
        charger_id = await charger_filter(conn, team_id, site_id, clean.get("charger"))
        first, last, interval = _period(clean)
        name, zone = site_zone(site["timezone"])
        start, end = local_midnight(first, zone), local_midnight(last + timedelta(days=1), zone)
        rollups = await usage.sum_rollups(
            conn, team_id, site_id, start, end, charger_id=charger_id, connector_keys=group
        )
    meta = UsageMeta(name, interval, first.isoformat(), last.isoformat(), "0.000")
    if interval == "day" and len(rollups) <= INLINE_ROWS:
        return json_response(usage_body(rollups, zone, meta))
    return json_response(await asyncio.to_thread(usage_body, rollups, zone, meta))


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/v2/teams/{team}/sites/{site}/usage",
        get_site_usage,
        "Get energy usage history",
        "Sites",
        query=QUERY_RULES,
        response=UsageResponse,
        shape="raw",
        errors=(422,),
    ),
]
