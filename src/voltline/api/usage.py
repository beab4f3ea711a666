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
from datetime import datetime, tzinfo

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from voltline.api._contract import Contract
from voltline.api._kit import DAY_FORMAT, input_data, json_response, parse_day, path_ref
from voltline.api._routing import Endpoint
from voltline.api.auth import runtime, scope, team_member
from voltline.api.transactions import bound_first, input_ref
from voltline.domain.energy import INTERVALS, Interval, kwh_text, local_buckets, sum_into, to_local
from voltline.domain.ids import Ref
from voltline.services import usage
from voltline.services.transactions import CHARGER_INVALID
from voltline.services.usage import GROUP_INVALID

QUERY_RULES = {
    "from": f"required|date_format:{DAY_FORMAT}",
    "to": f"required|date_format:{DAY_FORMAT}",
    "interval": "nullable|in:" + ",".join(INTERVALS),
    "group": "nullable",
    "charger": "nullable",
}
QUERY = Contract("UsageQuery", "A period of days, its interval and filters.", QUERY_RULES)
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


def usage_body(rollups: dict[datetime, int], zone: tzinfo, meta: UsageMeta) -> UsageResponse:
    """Every local bucket of the period with its kWh, and the total (pure; may run in a thread)."""
    first, last = parse_day(meta.date_from), parse_day(meta.date_to)
    bounds = local_buckets(first, last, zone, meta.interval)
    totals = sum_into(bounds, rollups)
    local = [to_local(bound, zone).isoformat() for bound in bounds]
    data = [UsageBucket(local[i], local[i + 1], kwh_text(wh)) for i, wh in enumerate(totals)]
    meta.total_kwh = kwh_text(sum(totals))
    return UsageResponse(data, meta)


async def get_site_usage(request: Request) -> Response:
    """Return the site's energy per bucket in the site's timezone, every bucket listed (zeros included)."""
    data = await input_data(request)
    rt, team_id, site = runtime(request), scope(request).team_id, path_ref(request, "site")
    group: Ref | None = None
    async with bound_first(lambda: usage.require_site_group(rt, team_id, site, group)):
        clean = QUERY.validate(data)
        group = input_ref(clean.get("group"), "group", GROUP_INVALID)
        charger = input_ref(clean.get("charger"), "charger", CHARGER_INVALID)
    first, last = parse_day(clean["from"]), parse_day(clean["to"])
    interval: Interval = clean.get("interval") or "day"
    found = await usage.get_site_usage(
        rt, team_id, site, first=first, last=last, interval=interval, group=group, charger=charger
    )
    meta = UsageMeta(found.timezone, interval, first.isoformat(), last.isoformat(), "0.000")
    if interval == "day" and len(found.rollups) <= INLINE_ROWS:
        return json_response(usage_body(found.rollups, found.zone, meta))
    return json_response(await asyncio.to_thread(usage_body, found.rollups, found.zone, meta))


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/v2/teams/{team}/sites/{site}/usage",
        get_site_usage,
        "Get energy usage history",
        "Sites",
        query=QUERY,
        response=UsageResponse,
        shape="raw",
        errors=(422,),
        guard=team_member,
    ),
]
