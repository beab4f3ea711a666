"""Meters of a team (spec/volttime-api.md §2.G) and the meter of a group (A14, R-103/R-104).

A meter's `latest_data` holds signed amperes per phase (negative = export) and the time of its
newest reading in milliseconds, or `"-"` when none arrived. Readings are posted to the meter; a
meter linked to a charger also reads that charger's connector-0 `Current.Import` (and
`Power.Active.Import`) samples, and the newer of the two readings wins. A group with a meter shows
it; a group without one shows a virtual meter: the sum of the live usage of its connectors and
those of its sub-groups, with `type: "virtual"` and null `id` and `uuid` (DESIGN: always 200).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from voltline.api._contract import Contract
from voltline.api._kit import (
    DATE_FORMAT,
    PAGE_QUERY,
    envelope,
    json_body,
    page_response,
    page_window,
    parse_date,
    path_ref,
)
from voltline.api._routing import Endpoint
from voltline.api._rules import validate
from voltline.api.auth import runtime, scope, team_member
from voltline.domain.power import PHASES, MeterReading, MeterTotals
from voltline.domain.timestamps import format_telemetry_timestamp, format_timestamp
from voltline.domain.transactions import rounded
from voltline.errors import ValidationError
from voltline.services import meters
from voltline.services.meters import METER_TYPES

VIRTUAL = "virtual"
FUTURE_TIMESTAMP = "The timestamp field must be a date before or equal to now."
# R-94 (Decision) for meters too: a reading more than 5 minutes ahead of our clock is refused.
MAX_AHEAD = timedelta(minutes=5)
_AMPS = "numeric|min:-100000|max:100000"
_WATTS = "numeric|min:-1000000000|max:1000000000"
CREATE_RULES = {"type": "nullable|string|in:" + ",".join(METER_TYPES), "charger_id": "nullable|integer"}
READING_RULES = {
    "l1": "required|" + _AMPS,
    "l2": "nullable|" + _AMPS,
    "l3": "nullable|" + _AMPS,
    "power": "nullable|" + _WATTS,
    "power_l1": "nullable|" + _WATTS,
    "power_l2": "nullable|" + _WATTS,
    "power_l3": "nullable|" + _WATTS,
    "timestamp": f"nullable|date_format:{DATE_FORMAT}",
}
_MILLIAMP = Decimal("0.001")
_DECIWATT = Decimal("0.1")


class LatestData(msgspec.Struct):
    """A meter's newest per-phase currents in signed amperes, and when they were read (or "-")."""

    l1: float
    l2: float
    l3: float
    updated_at: str


class MeterPower(msgspec.Struct):
    """A meter's power in watts, total and per phase; null when unknown."""

    total: float | None
    l1: float | None
    l2: float | None
    l3: float | None


class MeterResource(msgspec.Struct):
    """A team's meter."""

    uuid: str
    id: int
    type: str
    charger_id: int | None
    latest_data: LatestData
    created_at: str
    updated_at: str


class GroupMeterResource(msgspec.Struct):
    """The meter of a group, or its virtual meter (`type: "virtual"`, null id and uuid)."""

    uuid: str | None
    id: int | None
    type: str
    latest_data: LatestData
    power: MeterPower
    created_at: str | None
    updated_at: str | None


CREATE = Contract(
    "CreateMeterBody",
    "Body of POST /meters: the meter type and, optionally, a charger of the team that measures it.",
    CREATE_RULES,
)
READING = Contract(
    "MeterReadingBody",
    "Body of POST /meters/{meter}/readings: signed amperes per phase, optional watts and time (UTC).",
    READING_RULES,
)


def _number(value: Decimal, step: Decimal) -> float:
    number = rounded(value, step)
    return int(number) if number == number.to_integral_value() else float(number)


def _optional(value: Decimal | None, step: Decimal) -> float | None:
    return None if value is None else _number(value, step)


def latest_data(totals: MeterTotals) -> LatestData:
    """`latest_data` of a meter: amperes per phase and the reading's time ("-" when none)."""
    l1, l2, l3 = (_number(totals.currents[phase], _MILLIAMP) for phase in PHASES)
    stamp = "-" if totals.updated_at is None else format_telemetry_timestamp(totals.updated_at)
    return LatestData(l1=l1, l2=l2, l3=l3, updated_at=stamp)


def meter_power(totals: MeterTotals) -> MeterPower:
    """`power` of a meter in W (R-103 Decision: an object with nulls, never a sentence)."""
    l1, l2, l3 = (_optional(totals.phase_power.get(phase), _DECIWATT) for phase in PHASES)
    return MeterPower(total=_optional(totals.power, _DECIWATT), l1=l1, l2=l2, l3=l3)


def meter_resource(row: Mapping[Any, Any], totals: MeterTotals) -> MeterResource:
    """Shape a meter row and its reading for the API."""
    return MeterResource(
        uuid=row["uuid"],
        id=row["id"],
        type=row["type"],
        charger_id=row["charger_id"],
        latest_data=latest_data(totals),
        created_at=format_timestamp(row["created_at"]) or "",
        updated_at=format_timestamp(row["updated_at"]) or "",
    )


async def list_meters(request: Request) -> Response:
    """Return a page of the team's meters with their latest readings."""
    page = page_window(request)
    rows, totals, more = await meters.list_meters(
        runtime(request), scope(request).team_id, offset=page.offset, limit=page.size
    )
    return page_response(request, page, rows, lambda row: meter_resource(row, totals[row["id"]]), more=more)


async def create_meter(request: Request) -> Response:
    """Create a meter of the team (type ct_meter unless given), optionally measured by a charger."""
    body = await json_body(request)
    clean: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for field, rules in CREATE.rules.items():  # each field on its own, so the lookup joins the rule errors
        try:
            clean.update(validate(body, {field: rules}))
        except ValidationError as error:
            errors.update(error.errors)
    row, totals = await meters.create_meter(runtime(request), scope(request).team_id, clean, errors)
    return envelope(meter_resource(row, totals), 201)


def _amps(clean: dict[str, Any], field: str) -> Decimal:
    return rounded(Decimal(str(clean.get(field) or 0)), _MILLIAMP)


def _watts(clean: dict[str, Any], field: str) -> Decimal | None:
    value = clean.get(field)
    return None if value is None else rounded(Decimal(str(value)), _DECIWATT)


def posted_reading(body: dict[str, Any], now: datetime) -> MeterReading:
    """A posted reading, checked (422 with Laravel's messages)."""
    clean = READING.validate(body)
    at = now
    if clean.get("timestamp") is not None:
        at = parse_date(clean["timestamp"])
        if at - now > MAX_AHEAD:
            raise ValidationError.single("timestamp", FUTURE_TIMESTAMP)
    currents = {phase: _amps(clean, phase.lower()) for phase in PHASES}
    phase_power = {phase: _watts(clean, "power_" + phase.lower()) for phase in PHASES}
    return MeterReading(at, currents, _watts(clean, "power"), phase_power)


async def post_meter_reading(request: Request) -> Response:
    """Record a reading of the meter; an older reading than the one held is ignored."""
    body = await json_body(request)
    row, totals = await meters.post_meter_reading(
        runtime(request), scope(request).team_id, path_ref(request, "meter"), lambda now: posted_reading(body, now)
    )
    return envelope(meter_resource(row, totals))


def group_meter_resource(meter: Mapping[Any, Any] | None, totals: MeterTotals) -> GroupMeterResource:
    """Shape a group's meter (or, without one, its virtual meter) for the API."""
    data, power = latest_data(totals), meter_power(totals)
    if meter is None:
        return GroupMeterResource(None, None, VIRTUAL, data, power, None, None)
    stamps = format_timestamp(meter["created_at"]), format_timestamp(meter["updated_at"])
    return GroupMeterResource(meter["uuid"], meter["id"], meter["type"], data, power, *stamps)


async def get_group_meter(request: Request) -> Response:
    """Return the group's meter with its power, or the virtual sum of its connectors (R-103, R-104)."""
    site, group = path_ref(request, "site"), path_ref(request, "group")
    meter, totals = await meters.get_group_meter(runtime(request), scope(request).team_id, site, group)
    return envelope(group_meter_resource(meter, totals))


_METERS = "/api/v2/teams/{team}/meters"

ENDPOINTS = [
    Endpoint(
        "GET",
        _METERS,
        list_meters,
        "Get all meters",
        "Meters",
        query=PAGE_QUERY,
        response=MeterResource,
        shape="page",
        guard=team_member,
    ),
    Endpoint(
        "POST",
        _METERS,
        create_meter,
        "Create a meter",
        "Meters",
        body=CREATE,
        response=MeterResource,
        status=201,
        errors=(422,),
        guard=team_member,
    ),
    Endpoint(
        "POST",
        _METERS + "/{meter}/readings",
        post_meter_reading,
        "Post a meter reading",
        "Meters",
        body=READING,
        response=MeterResource,
        errors=(422,),
        guard=team_member,
    ),
    Endpoint(
        "GET",
        "/api/v2/teams/{team}/sites/{site}/groups/{group}/meter",
        get_group_meter,
        "Get meter usage for a group",
        "Groups",
        response=GroupMeterResource,
        guard=team_member,
    ),
]
