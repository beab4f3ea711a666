"""Transactions of a site (paginated) and of a charger (datapoints): spec/volttime-api.md A1 and C1.

Parameters are read from the query string and from a JSON body (DESIGN: GET parameters
documented as a body). Dates are `Y-m-d H:i:s` in UTC and filter on `started_at`, inclusive;
`date_from` and `date_to` are each `required_with` the other. Rows are scoped by the team and
site stamped on each transaction when it was written (DESIGN: data model).

CSV export for bookkeeping: `Accept: text/csv` or `?format=csv` (an explicit `format` wins over
the header) answers `text/csv; charset=utf-8` as an attachment: a header row with the JSON
field names, then one row per matching transaction, newest first (the charger list keeps its
`order_by`). Every match is exported, not one page: the site list ignores `page`/`per_page`, the
charger list's `limit` applies only when given. At most 50,000 rows: a larger export is a 422
asking for a narrower period. Cells that a spreadsheet would run as a formula get a leading `'`.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from voltline.api._contract import Contract
from voltline.api._kit import (
    DATE_RULES,
    INT_MAX,
    LIMIT_RULE,
    ORDER_RULE,
    PAGE_RULES,
    UUID_PATTERN,
    envelope,
    input_data,
    limit_and_order,
    optional_date,
    page_of,
    page_response,
    path_ref,
)
from voltline.api._routing import Endpoint
from voltline.api.auth import runtime, scope, team_member
from voltline.domain.ids import Ref
from voltline.domain.timestamps import format_timestamp
from voltline.domain.transactions import energy_wh, transaction_costs
from voltline.errors import ValidationError
from voltline.services import chargers, transactions
from voltline.services.transactions import CHARGER_INVALID

FORMAT_RULE = "nullable|in:json,csv"
CSV_MAX_ROWS = 50_000
CSV_INLINE_ROWS = 500
CSV_TOO_MANY = f"The export is limited to {CSV_MAX_ROWS} transactions; narrow the period with date from and date to."
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
SITE_QUERY_RULES = {
    **PAGE_RULES,
    **DATE_RULES,
    "format": FORMAT_RULE,
    "charger": "nullable",
    "status": "nullable|in:active,finished",
    "id_tag": "nullable|string|max:255",
}
CHARGER_QUERY_RULES = {**DATE_RULES, "limit": LIMIT_RULE, "order_by": ORDER_RULE, "format": FORMAT_RULE}
SITE_QUERY = Contract("SiteTransactionsQuery", "A page of the site's transactions, filtered.", SITE_QUERY_RULES)
CHARGER_QUERY = Contract("ChargerTransactionsQuery", "The charger's transactions in a period.", CHARGER_QUERY_RULES)


class TransactionResource(msgspec.Struct):
    """A transaction as the spec shows it; money and energy are decimal strings (C11)."""

    id: int
    charger_id: int
    charger_connector_id: int | None
    reservation_id: int | None
    id_tag: str | None
    meter_start: int | None
    meter_stop: int | None
    total_kwh: str
    start_cost: str
    kwh_cost: str
    total_kwh_cost: str
    total_cost: str
    started_at: str | None
    stopped_at: str | None
    stop_reason: str | None
    created_at: str
    updated_at: str


def transaction_resource(row: Mapping[Any, Any]) -> TransactionResource:
    """Shape a transaction row for the API, with kWh and costs from its Wh and copied prices."""
    wh = energy_wh(row["meter_start"], row["meter_stop"], row["register_wh"], active=row["status"] == "active")
    costs = transaction_costs(wh, row["kwh_price"], row["start_cost"])
    return TransactionResource(
        id=row["id"],
        charger_id=row["charger_id"],
        charger_connector_id=row["connector_ref"],
        reservation_id=row["reservation_id"],
        id_tag=row["id_tag"],
        meter_start=row["meter_start"],
        meter_stop=row["meter_stop"],
        total_kwh=costs.total_kwh,
        start_cost=costs.start_cost,
        kwh_cost=costs.kwh_cost,
        total_kwh_cost=costs.total_kwh_cost,
        total_cost=costs.total_cost,
        started_at=format_timestamp(row["started_at"]),
        stopped_at=format_timestamp(row["stopped_at"]),
        stop_reason=row["stop_reason"],
        created_at=format_timestamp(row["created_at"]) or "",
        updated_at=format_timestamp(row["updated_at"]) or "",
    )


def input_ref(value: Any, field: str, invalid: str) -> Ref | None:
    """An id or uuid given as input (not in the path); None when absent; 422 `invalid` when it can name nothing."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= INT_MAX:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10 and int(value) <= INT_MAX:
        return int(value)
    if isinstance(value, str) and UUID_PATTERN.fullmatch(value):
        return value.lower()
    raise ValidationError.single(field, invalid)


def _filters(clean: dict[str, Any]) -> dict[str, Any]:
    return {
        "date_from": optional_date(clean.get("date_from")),
        "date_to": optional_date(clean.get("date_to")),
        "status": clean.get("status"),
        "id_tag": clean.get("id_tag"),
    }


@asynccontextmanager
async def bound_first(found: Callable[[], Awaitable[object]]) -> AsyncIterator[None]:
    """DESIGN: an object of the path that names nothing is a 404 before any input is a 422 (`found` raises it)."""
    try:
        yield
    except ValidationError:
        await found()
        raise


def wants_csv(request: Request, clean: dict[str, Any]) -> bool:
    """`format=csv`, or no `format` and an Accept header that names text/csv."""
    if clean.get("format") is not None:
        return bool(clean["format"] == "csv")
    return "text/csv" in request.headers.get("accept", "").lower()


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return "" if value is None else value


def transactions_csv(rows: Sequence[Mapping[Any, Any]]) -> bytes:
    """The transactions as CSV (RFC 4180, CRLF): the JSON field names, then one row each."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(TransactionResource.__struct_fields__)
    for row in rows:
        item = transaction_resource(row)
        writer.writerow([_cell(getattr(item, name)) for name in TransactionResource.__struct_fields__])
    return out.getvalue().encode("utf-8")


async def csv_response(rows: Sequence[Mapping[Any, Any]], name: str) -> Response:
    """An attachment `transactions-<name>.csv`; 422 when over the export limit (shaped off the loop when big)."""
    if len(rows) > CSV_MAX_ROWS:
        raise ValidationError.single("date_from", CSV_TOO_MANY)
    body = transactions_csv(rows) if len(rows) <= CSV_INLINE_ROWS else await asyncio.to_thread(transactions_csv, rows)
    headers = {"Content-Disposition": f'attachment; filename="transactions-{name}.csv"'}
    return Response(body, media_type="text/csv; charset=utf-8", headers=headers)


async def list_site_transactions(request: Request) -> Response:
    """Return a page of the site's transactions, newest first, filtered by date, charger, status and id tag; or CSV."""
    data = await input_data(request)
    rt, team_id, site = runtime(request), scope(request).team_id, path_ref(request, "site")
    async with bound_first(lambda: chargers.get_site_id(rt, team_id, site)):
        clean = SITE_QUERY.validate(data)
        charger = input_ref(clean.get("charger"), "charger", CHARGER_INVALID)
    if wants_csv(request, clean):
        found = await transactions.list_site_transactions(
            rt, team_id, site, charger=charger, **_filters(clean), offset=0, limit=CSV_MAX_ROWS + 1, export=True
        )
        return await csv_response(found.rows, f"site-{found.owner_id}")
    page = page_of(clean)
    found = await transactions.list_site_transactions(
        rt, team_id, site, charger=charger, **_filters(clean), offset=page.offset, limit=page.fetch
    )
    return page_response(request, page, found.rows, transaction_resource)


async def list_charger_transactions(request: Request) -> Response:
    """Return the charger's transactions (unpaginated): `limit` of them, newest first unless `order_by=asc`; or CSV."""
    data = await input_data(request)
    rt, team_id, charger = runtime(request), scope(request).team_id, path_ref(request, "charger")
    async with bound_first(lambda: chargers.get_charger(rt, team_id, charger)):
        clean = CHARGER_QUERY.validate(data)
    limit, descending = limit_and_order(clean)
    csv_wanted = wants_csv(request, clean)
    if csv_wanted and clean.get("limit") is None:
        limit = CSV_MAX_ROWS + 1
    found = await transactions.list_charger_transactions(
        rt,
        team_id,
        charger,
        date_from=optional_date(clean.get("date_from")),
        date_to=optional_date(clean.get("date_to")),
        limit=limit,
        descending=descending,
    )
    if csv_wanted:
        return await csv_response(found.rows, f"charger-{found.owner_id}")
    return envelope([transaction_resource(row) for row in found.rows])


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/v2/teams/{team}/sites/{site}/transactions",
        list_site_transactions,
        "Get all transactions",
        "Sites",
        query=SITE_QUERY,
        response=TransactionResource,
        shape="page",
        errors=(422,),
        guard=team_member,
    ),
    Endpoint(
        "GET",
        "/api/v2/teams/{team}/chargers/{charger}/transactions",
        list_charger_transactions,
        "Get transactions",
        "Datapoints",
        query=CHARGER_QUERY,
        response=TransactionResource,
        shape="list",
        errors=(422,),
        guard=team_member,
    ),
]
