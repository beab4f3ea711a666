"""A charger's OCPP details: what it reported at boot, the lenient flag, and its security profile and password."""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy.engine import RowMapping
from starlette.requests import Request
from starlette.responses import Response

from voltline.api._kit import envelope, json_body, path_ref
from voltline.api._routing import Endpoint
from voltline.api._rules import validate
from voltline.api.auth import runtime, scope
from voltline.domain.credentials import OCPP_PASSWORD_MAX, OCPP_PASSWORD_MIN, hash_ocpp_password, new_ocpp_password
from voltline.domain.ids import ChargerId
from voltline.domain.timestamps import format_timestamp
from voltline.errors import ValidationError
from voltline.store import chargers

UPDATE_RULES = {
    "lenient": "nullable|boolean",
    "security_profile": "integer|in:0,1,2",
    "password": f"string|min:{OCPP_PASSWORD_MIN}|max:{OCPP_PASSWORD_MAX}|regex:ocpp_password",
    "generate_password": "boolean",
}
PASSWORD_PROHIBITED = "The password field is prohibited when generate password is true."


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


class ChargerOcppBody(msgspec.Struct):
    """Body of PUT .../ocpp: the lenient flag, the security profile and the password (omitted: unchanged)."""

    lenient: bool | None = None
    security_profile: int | msgspec.UnsetType = msgspec.UNSET
    password: str | msgspec.UnsetType = msgspec.UNSET
    generate_password: bool | msgspec.UnsetType = msgspec.UNSET


def charger_ocpp_resource(row: RowMapping, default_lenient: bool, password: str | None = None) -> ChargerOcppResource:
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


def security_changes(clean: dict[str, Any], secret_key: str) -> tuple[dict[str, Any], str | None]:
    """The column changes a validated body asks for, and the generated password to show once (if any)."""
    if clean.get("generate_password") and "password" in clean:
        raise ValidationError.single("password", PASSWORD_PROHIBITED)
    values: dict[str, Any] = {}
    if "lenient" in clean:
        values["lenient"] = clean["lenient"]
    if "security_profile" in clean:
        values["security_profile"] = clean["security_profile"]
    generated = new_ocpp_password() if clean.get("generate_password") else None
    password = generated or clean.get("password")
    if password is not None:
        values["password_hash"] = hash_ocpp_password(secret_key, password)
    return values, generated


async def get_charger_ocpp(request: Request) -> Response:
    """Return the charger's OCPP details, lenient flag and security profile."""
    rt = runtime(request)
    async with rt.db.read() as conn:
        row = await chargers.get_charger(conn, scope(request).team_id, path_ref(request, "charger"))
    return envelope(charger_ocpp_resource(row, rt.settings.ocpp_lenient))


async def update_charger_ocpp(request: Request) -> Response:
    """Set the lenient flag (from the next frame), the security profile and the password (from the next connection)."""
    rt = runtime(request)
    data = await json_body(request)
    async with rt.db.write() as conn:
        row = await chargers.get_charger(conn, scope(request).team_id, path_ref(request, "charger"))
        values, generated = security_changes(validate(data, UPDATE_RULES), rt.secret_key)
        row = await chargers.update_charger(conn, ChargerId(row["id"]), values)
    return envelope(charger_ocpp_resource(row, rt.settings.ocpp_lenient, generated))


_PATH = "/api/v2/teams/{team}/chargers/{charger}/ocpp"

ENDPOINTS = [
    Endpoint("GET", _PATH, get_charger_ocpp, "Get a charger's OCPP details", "Chargers", response=ChargerOcppResource),
    Endpoint(
        "PUT",
        _PATH,
        update_charger_ocpp,
        "Set a charger's lenient flag, security profile and password",
        "Chargers",
        body=ChargerOcppBody,
        response=ChargerOcppResource,
        errors=(422,),
    ),
]
