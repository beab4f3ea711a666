"""Firmware updates of a charger: start one (OCPP 1.6 §5.19 UpdateFirmware) and list them with their states.

Voltline serves no firmware: `location` tells the charger where to fetch it (http, https or ftp).
`install_at`, `signing_certificate` and `signature` are OCPP 2.0.1 fields: for a 1.6 charger
sending any of them is a 422 (services/firmware.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from voltline.api._contract import Contract
from voltline.api._kit import (
    DATE_FORMAT,
    INT_MAX,
    PAGE_QUERY,
    json_body,
    json_response,
    optional_date,
    page_response,
    page_window,
    path_ref,
)
from voltline.api._routing import Endpoint
from voltline.api.auth import runtime, scope, team_member
from voltline.domain.firmware import FirmwareRequest, read_history
from voltline.domain.ids import ChargerId
from voltline.domain.timestamps import format_timestamp
from voltline.services import chargers, firmware

# OCPP 2.0.1 FirmwareType bounds location (512), signingCertificate (5500) and signature (800);
# 1.6 takes any URI, so the tighter bound serves both.
UPDATE_RULES = {
    "location": "required|string|max:512|regex:firmware_location",
    "retrieve_at": f"nullable|date_format:{DATE_FORMAT}",
    "retries": f"nullable|integer|min:0|max:{INT_MAX}",
    "retry_interval": f"nullable|integer|min:0|max:{INT_MAX}",
    "install_at": f"nullable|date_format:{DATE_FORMAT}",
    "signing_certificate": "nullable|string|max:5500",
    "signature": "nullable|string|max:800",
}
UPDATE = Contract(
    "UpdateFirmwareBody",
    "Body of commands/update-firmware: where the charger fetches the firmware (an http, https or ftp URL),"
    " when (`Y-m-d H:i:s` UTC, now when left out) and how often it retries; `install_at`,"
    " `signing_certificate` and `signature` need an OCPP 2.0.1 charger.",
    UPDATE_RULES,
)


class FirmwareState(msgspec.Struct):
    """One state of a firmware update and when Voltline learnt it."""

    status: str
    at: str


class FirmwareUpdateResource(msgspec.Struct):
    """A firmware update as the API shows it: what was asked, where it stands, and every state with its time."""

    uuid: str
    charger_id: int
    location: str
    retrieve_at: str
    retries: int | None
    retry_interval: int | None
    status: str
    firmware_version_before: str | None
    firmware_version_after: str | None
    history: list[FirmwareState]
    created_at: str
    updated_at: str
    finished_at: str | None


class FirmwareUpdateReply(msgspec.Struct):
    """The charger's answer (Accepted: it took the request; OCPP 1.6 carries no status) and the stored update."""

    message: str
    data: FirmwareUpdateResource


def firmware_update_resource(row: Mapping[Any, Any]) -> FirmwareUpdateResource:
    """Shape a firmware update row for the API."""
    return FirmwareUpdateResource(
        uuid=row["uuid"],
        charger_id=row["charger_id"],
        location=row["location"],
        retrieve_at=format_timestamp(row["retrieve_at"]) or "",
        retries=row["retries"],
        retry_interval=row["retry_interval"],
        status=row["status"],
        firmware_version_before=row["firmware_version_before"],
        firmware_version_after=row["firmware_version_after"],
        history=[FirmwareState(status=str(e["status"]), at=str(e["at"])) for e in read_history(row)],
        created_at=format_timestamp(row["created_at"]) or "",
        updated_at=format_timestamp(row["updated_at"]) or "",
        finished_at=format_timestamp(row["finished_at"]),
    )


def _request(clean: Mapping[str, Any]) -> FirmwareRequest:
    return FirmwareRequest(
        location=clean["location"],
        retrieve_at=optional_date(clean.get("retrieve_at")),
        retries=clean.get("retries"),
        retry_interval=clean.get("retry_interval"),
        install_at=optional_date(clean.get("install_at")),
        signing_certificate=clean.get("signing_certificate"),
        signature=clean.get("signature"),
    )


async def _charger(request: Request) -> Mapping[Any, Any]:
    """The team's charger of the path (looked up before the body is checked, as Laravel binds routes first)."""
    return await chargers.get_charger(runtime(request), scope(request).team_id, path_ref(request, "charger"))


async def update_firmware(request: Request) -> Response:
    """Ask the charger to fetch and install new firmware (OCPP UpdateFirmware); the update is tracked."""
    charger = await _charger(request)
    clean = UPDATE.validate(await json_body(request))
    row = await firmware.request_update(runtime(request), scope(request).team_id, charger, _request(clean))
    return json_response(FirmwareUpdateReply(message="Accepted", data=firmware_update_resource(row)))


async def list_firmware_updates(request: Request) -> Response:
    """Return a page of the firmware updates the team asked of the charger, newest first."""
    charger = await _charger(request)
    page = page_window(request)
    rows = await firmware.list_updates(
        runtime(request), scope(request).team_id, ChargerId(charger["id"]), offset=page.offset, limit=page.fetch
    )
    return page_response(request, page, rows, firmware_update_resource)


_CHARGER = "/api/v2/teams/{team}/chargers/{charger}"

ENDPOINTS = [
    Endpoint(
        "POST",
        f"{_CHARGER}/commands/update-firmware",
        update_firmware,
        "Update the firmware",
        "Firmware",
        body=UPDATE,
        response=FirmwareUpdateReply,
        shape="raw",
        errors=(404, 409, 422, 502, 504),
        guard=team_member,
    ),
    Endpoint(
        "GET",
        f"{_CHARGER}/firmware-updates",
        list_firmware_updates,
        "Get the firmware updates",
        "Firmware",
        query=PAGE_QUERY,
        response=FirmwareUpdateResource,
        shape="page",
        errors=(404, 422),
        guard=team_member,
    ),
]
