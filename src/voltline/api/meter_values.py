"""A charger's meter values (datapoints): spec/volttime-api.md C2, every sample in a time range.

`date_from` and `date_to` are both required (DESIGN: wire details), `Y-m-d H:i:s` in UTC and
inclusive; `context`, `measurand`, `phase`, `location` and `unit` narrow the samples to the
spec's enums (§4); `limit` (default 1000, at most 10000) and `order_by` (default `desc`) apply to
the expanded samples, ordered by (timestamp, id). A sample's id is `frame_id * 1000 + position`.
Parameters come from the query string and a JSON body; frames are scoped by the team stamped
on them when they were written.
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from voltline.api._contract import Contract
from voltline.api._kit import (
    DATE_FORMAT,
    LIMIT_RULE,
    ORDER_RULE,
    envelope,
    input_data,
    limit_and_order,
    parse_date,
    path_ref,
)
from voltline.api._routing import Endpoint
from voltline.api.auth import runtime, scope, team_member
from voltline.api.transactions import bound_first
from voltline.domain.timestamps import format_timestamp
from voltline.services import chargers, meter
from voltline.services.meter import StoredSample

CONTEXTS = (
    "Interruption.Begin",
    "Interruption.End",
    "Other",
    "Sample.Clock",
    "Sample.Periodic",
    "Transaction.Begin",
    "Transaction.End",
    "Trigger",
)
MEASURANDS = (
    "Current.Export",
    "Current.Import",
    "Current.Offered",
    "Energy.Active.Export.Register",
    "Energy.Active.Import.Register",
    "Energy.Reactive.Export.Register",
    "Energy.Reactive.Import.Register",
    "Energy.Active.Export.Interval",
    "Energy.Active.Import.Interval",
    "Energy.Reactive.Export.Interval",
    "Energy.Reactive.Import.Interval",
    "Frequency",
    "Power.Active.Export",
    "Power.Active.Import",
    "Power.Factor",
    "Power.Offered",
    "Power.Reactive.Export",
    "Power.Reactive.Import",
    "RPM",
    "SoC",
    "Temperature",
    "Voltage",
)
PHASES = ("L1", "L2", "L3", "N", "L1-N", "L2-N", "L3-N", "L1-L2", "L2-L3", "L3-L1")
LOCATIONS = ("Body", "Inlet", "Cable", "Outlet", "EV", "Renewable")
UNITS = (
    "Wh",
    "kWh",
    "varh",
    "kvarh",
    "W",
    "kW",
    "VA",
    "kVA",
    "var",
    "kvar",
    "A",
    "V",
    "Celsius",
    "Fahrenheit",
    "K",
    "Percent",
)
QUERY_RULES = {
    "date_from": f"required|date_format:{DATE_FORMAT}",
    "date_to": f"required|date_format:{DATE_FORMAT}",
    "context": "in:" + ",".join(CONTEXTS),
    "measurand": "in:" + ",".join(MEASURANDS),
    "phase": "in:" + ",".join(PHASES),
    "location": "in:" + ",".join(LOCATIONS),
    "unit": "in:" + ",".join(UNITS),
    "limit": LIMIT_RULE,
    "order_by": ORDER_RULE,
}
QUERY = Contract("MeterValuesQuery", "A period and the sample filters.", QUERY_RULES)


class MeterValueResource(msgspec.Struct):
    """One sampled value: the charger's text as sent, with its frame's connector, transaction and time."""

    id: int
    charger_connector_id: int | None
    connector_id: int
    transaction_id: int | None
    timestamp: str
    value: str
    context: str | None
    format: str | None
    measurand: str
    phase: str | None
    location: str | None
    unit: str | None


def meter_value_resource(stored: StoredSample, connector_refs: dict[int, int]) -> MeterValueResource:
    """Shape a stored sample for the API; `charger_connector_id` is the connector's row id (None for 0)."""
    sample = stored.sample
    return MeterValueResource(
        id=stored.id,
        charger_connector_id=connector_refs.get(stored.connector_number),
        connector_id=stored.connector_number,
        transaction_id=stored.transaction_id,
        timestamp=format_timestamp(stored.timestamp) or "",
        value=sample.value,
        context=sample.context,
        format=sample.format,
        measurand=sample.measurand,
        phase=sample.phase,
        location=sample.location,
        unit=sample.unit,
    )


async def list_charger_meter_values(request: Request) -> Response:
    """Return the charger's meter values in [date_from, date_to] (unpaginated), newest first by default."""
    data = await input_data(request)
    rt, team_id, charger = runtime(request), scope(request).team_id, path_ref(request, "charger")
    async with bound_first(lambda: chargers.get_charger(rt, team_id, charger)):
        clean = QUERY.validate(data)
    limit, descending = limit_and_order(clean)
    found = await meter.list_charger_meter_values(
        rt,
        team_id,
        charger,
        date_from=parse_date(clean["date_from"]),
        date_to=parse_date(clean["date_to"]),
        limit=limit,
        descending=descending,
        wanted=clean,
    )
    return envelope([meter_value_resource(stored, found.connector_refs) for stored in found.samples])


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/v2/teams/{team}/chargers/{charger}/metervalues",
        list_charger_meter_values,
        "Get metervalues",
        "Datapoints",
        query=QUERY,
        response=MeterValueResource,
        shape="list",
        errors=(422,),
        guard=team_member,
    ),
]
