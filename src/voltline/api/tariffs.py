"""Day-ahead tariffs of a bidding zone: spec/volttime-api.md §2.G, `GET /api/v2/tariffs`.

`location` (required) is the bidding zone (`NL`, `DE-LU`; matched case-insensitively). The
answer lists the stored slots that overlap the window, oldest first: by default today and
tomorrow in UTC (`[today 00:00Z, today + 2 days 00:00Z)`), else `[date_from, date_to)`
(`Y-m-d H:i:s`, UTC, each `required_with` the other); `limit` (default 1000, at most 10000)
caps the list. Parameters come from the query string and a JSON body. `price` is an integer
in hundredths of a euro cent per kWh, rounded half-up (away from zero) from EUR/MWh x 10
(DESIGN: 15.06 ct/kWh -> 1506); spot prices exclude tax. Prices are public market data, so
any authenticated caller may read any zone.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from voltline.api._contract import Contract
from voltline.api._kit import DATE_RULES, LIMIT_RULE, envelope, input_data, parse_date, query_limit
from voltline.api._routing import Endpoint
from voltline.api.auth import authenticated, runtime
from voltline.domain.prices import PriceSlot
from voltline.domain.timestamps import format_timestamp
from voltline.domain.transactions import rounded
from voltline.services import tariffs

TARIFF_TYPE = "epex-spot"
QUERY_RULES = {"location": "required|string|max:16", **DATE_RULES, "limit": LIMIT_RULE}
QUERY = Contract("TariffsQuery", "A price zone and a period.", QUERY_RULES)


class TariffResource(msgspec.Struct):
    """One day-ahead slot: its start and price in 1/100 ct/kWh, without tax."""

    type: str
    location: str
    timestamp: str
    price: int
    price_includes_tax: bool


def hundredths_of_cent(eur_per_mwh: Decimal) -> int:
    """EUR/MWh to hundredths of a euro cent per kWh (x 10), rounded half-up."""
    return int(rounded(eur_per_mwh * 10, Decimal(1)))


def tariff_resource(zone: str, slot: PriceSlot) -> TariffResource:
    """Shape one stored slot for the API."""
    return TariffResource(
        type=TARIFF_TYPE,
        location=zone,
        timestamp=format_timestamp(slot.start) or "",
        price=hundredths_of_cent(slot.price),
        price_includes_tax=False,
    )


def window(clean: dict[str, str], now: datetime) -> tuple[datetime, datetime]:
    """`[date_from, date_to)` when given, else today and tomorrow in UTC."""
    if clean.get("date_from") is not None:
        return parse_date(clean["date_from"]), parse_date(clean["date_to"])
    today = datetime.combine(now.date(), time(0))
    return today, today + timedelta(days=2)


async def list_tariffs(request: Request) -> Response:
    """Return the day-ahead prices of a location (bidding zone), oldest first."""
    clean = QUERY.validate(await input_data(request))
    zone = str(clean["location"]).upper()
    start, end = window(clean, runtime(request).clock.now())
    limit = query_limit(clean)
    slots = await tariffs.list_tariffs(runtime(request), zone, start, end, limit=limit)
    return envelope([tariff_resource(zone, slot) for slot in slots])


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/v2/tariffs",
        list_tariffs,
        "Fetch tariffs for a location",
        "Tariffs",
        query=QUERY,
        response=TariffResource,
        shape="list",
        errors=(422,),
        guard=authenticated,
    ),
]
