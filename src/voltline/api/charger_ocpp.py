"""A charger's OCPP details: what it reported at boot, and the per-charger lenient flag."""

from __future__ import annotations

import msgspec
from sqlalchemy.engine import RowMapping
from starlette.requests import Request
from starlette.responses import Response

from voltline.api._kit import envelope, json_body, path_ref
from voltline.api._routing import Endpoint
from voltline.api._rules import validate
from voltline.api.auth import runtime, scope
from voltline.domain.ids import ChargerId
from voltline.domain.timestamps import format_timestamp
from voltline.store import chargers

UPDATE_RULES = {"lenient": "nullable|boolean"}


class ChargerOcppResource(msgspec.Struct):
    """Protocol facts of a charger; `lenient` null means the server default applies."""

    identity: str
    ocpp_version: str | None
    vendor: str | None
    model: str | None
    serial_number: str | None
    firmware_version: str | None
    firmware_status: str | None
    diagnostics_status: str | None
    heartbeat_interval: int | None
    last_seen_at: str | None
    lenient: bool | None
    effective_lenient: bool


class ChargerOcppBody(msgspec.Struct):
    """Body of PUT .../ocpp: accept known-bad firmware payloads (true), refuse them (false), or default (null)."""

    lenient: bool | None = None


def charger_ocpp_resource(row: RowMapping, default_lenient: bool) -> ChargerOcppResource:
    """Shape a charger row's OCPP facts."""
    lenient = None if row["lenient"] is None else bool(row["lenient"])
    return ChargerOcppResource(
        identity=row["identity"],
        ocpp_version=row["ocpp_version"],
        vendor=row["vendor"],
        model=row["model"],
        serial_number=row["serial_number"],
        firmware_version=row["firmware_version"],
        firmware_status=row["firmware_status"],
        diagnostics_status=row["diagnostics_status"],
        heartbeat_interval=row["heartbeat_interval"],
        last_seen_at=format_timestamp(row["last_seen_at"]),
        lenient=lenient,
        effective_lenient=default_lenient if lenient is None else lenient,
    )


async def get_charger_ocpp(request: Request) -> Response:
    """Return the charger's OCPP details and lenient flag."""
    rt = runtime(request)
    async with rt.db.read() as conn:
        row = await chargers.get_charger(conn, scope(request).team_id, path_ref(request, "charger"))
    return envelope(charger_ocpp_resource(row, rt.settings.ocpp_lenient))


async def update_charger_ocpp(request: Request) -> Response:
    """Set the charger's lenient flag (applies from the charger's next frame)."""
    rt = runtime(request)
    data = await json_body(request)
    async with rt.db.write() as conn:
        row = await chargers.get_charger(conn, scope(request).team_id, path_ref(request, "charger"))
        clean = validate(data, UPDATE_RULES)
        if "lenient" in clean:
            row = await chargers.update_charger(conn, ChargerId(row["id"]), {"lenient": clean["lenient"]})
    return envelope(charger_ocpp_resource(row, rt.settings.ocpp_lenient))


_PATH = "/api/v2/teams/{team}/chargers/{charger}/ocpp"

ENDPOINTS = [
    Endpoint("GET", _PATH, get_charger_ocpp, "Get a charger's OCPP details", "Chargers", response=ChargerOcppResource),
    Endpoint(
        "PUT",
        _PATH,
        update_charger_ocpp,
        "Set a charger's lenient flag",
        "Chargers",
        body=ChargerOcppBody,
        response=ChargerOcppResource,
        errors=(422,),
    ),
]
