"""A charger's OCPP details: what it reported at boot, the lenient flag, and its security profile and password."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from voltline.api._contract import Contract
from voltline.api._kit import envelope, json_body, path_ref
from voltline.api._routing import Endpoint
from voltline.api.auth import runtime, scope, team_member
from voltline.domain.credentials import OCPP_PASSWORD_MAX, OCPP_PASSWORD_MIN
from voltline.domain.timestamps import format_timestamp
from voltline.services import chargers

UPDATE_RULES = {
    "lenient": "nullable|boolean",
    "security_profile": "integer|in:0,1,2",
    "password": f"string|min:{OCPP_PASSWORD_MIN}|max:{OCPP_PASSWORD_MAX}|regex:ocpp_password",
    "generate_password": "boolean",
}


class ChargerOcppResource(msgspec.Struct, omit_defaults=True):
    """Protocol facts of a charger; `lenient` null means the server default applies.

    `security_profile`: 0 identity only, 1 HTTP Basic over ws or wss, 2 HTTP Basic over wss only.
    `password` appears once, in the answer to the PUT that generated it.
    """

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
    security_profile: int
    has_password: bool
    password: str | None = None


UPDATE = Contract(
    "ChargerOcppBody",
    "Body of PUT .../ocpp: the lenient flag, the security profile and the password (omitted: unchanged).",
    UPDATE_RULES,
)


def charger_ocpp_resource(
    row: Mapping[Any, Any], default_lenient: bool, password: str | None = None
) -> ChargerOcppResource:
    """Shape a charger row's OCPP facts (with a just-generated password, once)."""
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
        security_profile=int(row["security_profile"]),
        has_password=row["password_hash"] is not None,
        password=password,
    )


async def get_charger_ocpp(request: Request) -> Response:
    """Return the charger's OCPP details, lenient flag and security profile."""
    rt = runtime(request)
    row = await chargers.get_charger(rt, scope(request).team_id, path_ref(request, "charger"))
    return envelope(charger_ocpp_resource(row, rt.settings.ocpp_lenient))


async def update_charger_ocpp(request: Request) -> Response:
    """Set the lenient flag (from the next frame), the security profile and the password (from the next connection)."""
    rt = runtime(request)
    data = await json_body(request)
    team_id, ref = scope(request).team_id, path_ref(request, "charger")
    await chargers.get_charger(rt, team_id, ref)  # the path is bound before the body is checked (Laravel)
    row, generated = await chargers.update_charger_ocpp(rt, team_id, ref, UPDATE.validate(data))
    return envelope(charger_ocpp_resource(row, rt.settings.ocpp_lenient, generated))


_PATH = "/api/v2/teams/{team}/chargers/{charger}/ocpp"

ENDPOINTS = [
    Endpoint(
        "GET",
        _PATH,
        get_charger_ocpp,
        "Get a charger's OCPP details",
        "Chargers",
        response=ChargerOcppResource,
        guard=team_member,
    ),
    Endpoint(
        "PUT",
        _PATH,
        update_charger_ocpp,
        "Set a charger's lenient flag, security profile and password",
        "Chargers",
        body=UPDATE,
        response=ChargerOcppResource,
        errors=(422,),
        guard=team_member,
    ),
]
