"""v3 reads of a charger: live power, the latest meter values, transactions and meter values.

spec volttime-v3 §3.7: `power-usage` and `latest-metervalue` are unwrapped; power usage is the
v2 computation (strings, "-" for a phase never reported, zeros when idle). §3.9: transactions
with `sort`, `limit`, `filter[status]`, newest first, simple pagination; `id` is Voltline's id.
§3.11: meter values with the v2 filters, newest first, length-aware pagination.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from voltline.api._contract import Contract
from voltline.api._kit import (
    LIMIT_RULE,
    PAGE_RULES,
    input_data,
    json_response,
    limit_and_order,
    page_of,
    page_response,
    parse_date,
    path_number,
    query_data,
)
from voltline.api._routing import Endpoint
from voltline.api.auth import authenticated, runtime
from voltline.api.meter_values import QUERY_RULES as METER_RULES
from voltline.api.power_usage import PowerUsageResource, power_usage_resource
from voltline.api.transactions import bound_first
from voltline.api.v3._common import V3, charger_team, length_aware_page
from voltline.domain.timestamps import format_timestamp
from voltline.domain.transactions import energy_wh, transaction_costs
from voltline.services import chargers, meter, reach, transactions, usage
from voltline.services.meter import StoredSample

# OCPP 1.6 §7.45 SampledValue defaults, written out because clients match them literally (spec v3 §6.6).
OCPP_DEFAULTS = {
    "context": "Sample.Periodic",
    "format": "Raw",
    "measurand": "Energy.Active.Import.Register",
    "location": "Outlet",
    "unit": "Wh",
}
TRANSACTION_RULES = {
    **PAGE_RULES,
    "limit": LIMIT_RULE,
    "sort": "nullable|in:started_at,-started_at",
    "filter[status]": "nullable|in:active,finished",
}
TRANSACTIONS = Contract(
    "V3TransactionsQuery",
    "The charger's transactions: `sort` (default `-started_at`), `limit` rows at most, `filter[status]`, a page.",
    TRANSACTION_RULES,
)
METER_VALUES = Contract(
    "V3MeterValuesQuery", "A period, the sample filters and a page (length-aware).", {**METER_RULES, **PAGE_RULES}
)


class SampledValue(msgspec.Struct):
    """One OCPP SampledValue, camelCase, with the OCPP defaults written out."""

    value: str
    context: str
    format: str
    measurand: str
    phase: str | None
    location: str
    unit: str


class MeterValue(msgspec.Struct):
    """One OCPP MeterValue element."""

    timestamp: str
    sampledValue: list[SampledValue]


class LatestMeterValueResource(msgspec.Struct):
    """The newest MeterValues the connector sent, shaped as the OCPP request (unwrapped)."""

    connectorId: int
    meterValue: list[MeterValue]


class TransactionCharger(msgspec.Struct):
    """The charger of a transaction."""

    uuid: str
    identity: str
    reference: str | None


class TransactionConnector(msgspec.Struct):
    """The connector of a transaction, by OCPP number."""

    connector_id: int


class V3TransactionResource(msgspec.Struct):
    """A transaction as v3 shows it (spec v3 §3.9); `id` is Voltline's id."""

    id: int
    charger_id: int
    charger_connector_id: int | None
    reservation_id: int | None
    id_tag: str | None
    meter_start: int | None
    meter_stop: int | None
    total_kwh: str
    started_at: str | None
    stopped_at: str | None
    stop_reason: str | None
    is_valid: bool
    created_at: str
    updated_at: str
    charger: TransactionCharger
    connector: TransactionConnector


class V3MeterValueResource(msgspec.Struct):
    """One sampled value (spec v3 §3.11)."""

    id: int
    charger_id: int
    charger_connector_id: int | None
    connector_id: int
    charger_transaction_id: int | None
    transaction_id: int | None
    timestamp: str
    value: str
    context: str | None
    format: str
    measurand: str
    phase: str | None
    location: str | None
    unit: str | None


class PageLink(msgspec.Struct):
    """One link of a length-aware paginator's `meta.links`."""

    url: str | None
    label: str
    page: int | None
    active: bool


class LengthAwareLinks(msgspec.Struct):
    """`links` of a length-aware page."""

    first: str
    last: str
    prev: str | None
    next: str | None


class LengthAwareMeta(msgspec.Struct):
    """`meta` of a length-aware page."""

    current_page: int
    last_page: int
    total: int
    per_page: int
    path: str
    links: list[PageLink]
    to: int | None = None
    from_: int | None = msgspec.field(default=None, name="from")


class V3MeterValuesPage(msgspec.Struct):
    """A length-aware page of meter values (spec v3 §1.3)."""

    data: list[V3MeterValueResource]
    links: LengthAwareLinks
    meta: LengthAwareMeta


async def v3_power_usage(request: Request) -> Response:
    """Return the connector's live usage, unwrapped: per-phase A and kW as strings, zeros when idle."""
    team_id, uuid = await charger_team(request)
    found = await usage.get_charger_connector_usage(runtime(request), team_id, uuid, path_number(request, "number"))
    return json_response(power_usage_resource(found))


def sampled_value(stored: StoredSample) -> SampledValue:
    """A stored sample in OCPP shape, defaults written out."""
    sample = stored.sample
    return SampledValue(
        value=sample.value,
        context=sample.context or OCPP_DEFAULTS["context"],
        format=sample.format or OCPP_DEFAULTS["format"],
        measurand=sample.measurand or OCPP_DEFAULTS["measurand"],
        phase=sample.phase,
        location=sample.location or OCPP_DEFAULTS["location"],
        unit=sample.unit or OCPP_DEFAULTS["unit"],
    )


async def v3_latest_metervalue(request: Request) -> Response:
    """Return the newest MeterValues of the connector as OCPP sent it (unwrapped); `meterValue` is [] before any."""
    team_id, uuid = await charger_team(request)
    number = path_number(request, "number")
    samples = await reach.latest_samples(runtime(request), team_id, uuid, number)
    values = []
    if samples:
        stamp = format_timestamp(samples[0].timestamp) or ""
        values.append(MeterValue(timestamp=stamp, sampledValue=[sampled_value(s) for s in samples]))
    return json_response(LatestMeterValueResource(connectorId=number, meterValue=values))


def transaction_resource(row: Mapping[Any, Any], charger: Mapping[Any, Any]) -> V3TransactionResource:
    """Shape a transaction row for v3; `is_valid` is false only for a meter that ran backwards."""
    wh = energy_wh(row["meter_start"], row["meter_stop"], row["register_wh"], active=row["status"] == "active")
    costs = transaction_costs(wh, row["kwh_price"], row["start_cost"])
    start, stop = row["meter_start"], row["meter_stop"]
    return V3TransactionResource(
        id=row["id"],
        charger_id=row["charger_id"],
        charger_connector_id=row["connector_ref"],
        reservation_id=row["reservation_id"],
        id_tag=row["id_tag"],
        meter_start=start,
        meter_stop=stop,
        total_kwh=costs.total_kwh,
        started_at=format_timestamp(row["started_at"]),
        stopped_at=format_timestamp(row["stopped_at"]),
        stop_reason=row["stop_reason"],
        is_valid=not (start is not None and stop is not None and stop < start),
        created_at=format_timestamp(row["created_at"]) or "",
        updated_at=format_timestamp(row["updated_at"]) or "",
        charger=TransactionCharger(uuid=charger["uuid"], identity=charger["identity"], reference=charger["reference"]),
        connector=TransactionConnector(connector_id=row["connector_number"]),
    )


async def v3_list_transactions(request: Request) -> Response:
    """Return a page of the charger's transactions, newest first unless `sort=started_at`; `limit` caps the rows."""
    team_id, uuid = await charger_team(request)
    rt = runtime(request)
    clean = TRANSACTIONS.validate(query_data(request))
    page = page_of(clean)
    cap = int(clean["limit"]) if clean.get("limit") is not None else None
    wanted = page.offset + page.fetch if cap is None else min(cap, page.offset + page.fetch)
    charger = await chargers.get_charger(rt, team_id, uuid)
    found = await transactions.list_charger_transactions(
        rt,
        team_id,
        uuid,
        date_from=None,
        date_to=None,
        limit=max(wanted, 1),
        descending=clean.get("sort") != "started_at",
        status=clean.get("filter[status]"),
    )
    rows = found.rows[page.offset : page.offset + page.fetch] if wanted > page.offset else []
    return page_response(request, page, rows, lambda row: transaction_resource(row, charger))


async def v3_list_meter_values(request: Request) -> Response:
    """Return the charger's meter values in [date_from, date_to], newest first by default, a length-aware page."""
    team_id, uuid = await charger_team(request)
    rt = runtime(request)
    data = await input_data(request)
    async with bound_first(lambda: chargers.get_charger(rt, team_id, uuid)):
        clean = METER_VALUES.validate(data)
    limit, descending = limit_and_order(clean)
    found = await meter.list_charger_meter_values(
        rt,
        team_id,
        uuid,
        date_from=parse_date(clean["date_from"]),
        date_to=parse_date(clean["date_to"]),
        limit=limit,
        descending=descending,
        wanted=clean,
    )

    def shape(stored: StoredSample) -> V3MeterValueResource:
        sample = stored.sample
        return V3MeterValueResource(
            id=stored.id,
            charger_id=stored.charger_id,
            charger_connector_id=found.connector_refs.get(stored.connector_number),
            connector_id=stored.connector_number,
            charger_transaction_id=stored.transaction_id,
            transaction_id=stored.transaction_id,
            timestamp=format_timestamp(stored.timestamp) or "",
            value=sample.value,
            context=sample.context,
            format="Raw",
            measurand=sample.measurand,
            phase=sample.phase,
            location=sample.location,
            unit=sample.unit,
        )

    return length_aware_page(request, page_of(clean), found.samples, shape)


C = f"{V3}/chargers/{{charger}}"

ENDPOINTS = [
    Endpoint(
        "GET",
        f"{C}/connectors/{{number}}/power-usage",
        v3_power_usage,
        "Get the live power usage of a connector",
        "v3 Connectors",
        response=PowerUsageResource,
        shape="raw",
        guard=authenticated,
    ),
    Endpoint(
        "GET",
        f"{C}/connectors/{{number}}/latest-metervalue",
        v3_latest_metervalue,
        "Get the latest meter values of a connector",
        "v3 Connectors",
        response=LatestMeterValueResource,
        shape="raw",
        guard=authenticated,
    ),
    Endpoint(
        "GET",
        f"{C}/transactions",
        v3_list_transactions,
        "Get the transactions of a charger",
        "v3 Transactions",
        query=TRANSACTIONS,
        response=V3TransactionResource,
        shape="page",
        errors=(422,),
        guard=authenticated,
    ),
    Endpoint(
        "GET",
        f"{C}/metervalues",
        v3_list_meter_values,
        "Get the meter values of a charger",
        "v3 Meter values",
        query=METER_VALUES,
        response=V3MeterValuesPage,
        shape="raw",
        errors=(422,),
        guard=authenticated,
    ),
]
