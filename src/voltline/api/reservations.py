"""Reservations of a charger's connector for an id tag (OCPP 1.6 §5.13 ReserveNow, §5.2 CancelReservation).

A reservation is stored only when the charger accepted it: any refusal (Occupied, Faulted,
Unavailable, Rejected, a CALLERROR such as NotSupported) is a 409 naming the charger's answer,
an offline charger a 409, no answer in time a 504; nothing stays stored in each case.
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
    envelope,
    json_body,
    no_content,
    page_response,
    page_window,
    parse_date,
    path_ref,
)
from voltline.api._routing import Endpoint
from voltline.api._rules import validate
from voltline.api.auth import runtime, scope, team_member
from voltline.domain.timestamps import format_timestamp
from voltline.errors import ValidationError
from voltline.services import chargers, reservations
from voltline.services.runtime import Runtime

CREATE_RULES = {
    "connector_id": f"required|integer|min:0|max:{INT_MAX}",
    "evse_id": f"nullable|integer|min:1|max:{INT_MAX}",
    "id_tag": "required|string|max:20",
    "expires_at": f"required|date_format:{DATE_FORMAT}",
}
CREATE = Contract(
    "CreateReservationBody",
    "Body of POST .../reservations: the connector (0 = any connector, if the charger allows it), the id tag and"
    " `expires_at` (`Y-m-d H:i:s` in UTC, in the future). `evse_id` is for OCPP 2.0.1 chargers only.",
    CREATE_RULES,
)


class ReservationResource(msgspec.Struct):
    """A reservation as the API shows it; `status` is active, used, cancelled or expired."""

    uuid: str
    id: int
    connector_id: int
    evse_id: int | None
    id_tag: str
    expires_at: str
    status: str
    transaction_id: int | None
    created_at: str
    updated_at: str
    ended_at: str | None


def reservation_resource(row: Mapping[Any, Any], rt: Runtime) -> ReservationResource:
    """Shape a reservation row for the API (an active one past its time shows `expired`)."""
    return ReservationResource(
        uuid=row["uuid"],
        id=row["id"],
        connector_id=row["connector_number"],
        evse_id=None,
        id_tag=row["id_tag"],
        expires_at=format_timestamp(row["expires_at"]) or "",
        status=reservations.shown_status(row, rt.clock.now()),
        transaction_id=row["transaction_id"],
        created_at=format_timestamp(row["created_at"]) or "",
        updated_at=format_timestamp(row["updated_at"]) or "",
        ended_at=format_timestamp(row["ended_at"]),
    )


async def _charger(request: Request) -> Mapping[Any, Any]:
    """The team's charger of the path (looked up before the body is checked, as Laravel binds routes first)."""
    return await chargers.get_charger(runtime(request), scope(request).team_id, path_ref(request, "charger"))


async def _validated(rt: Runtime, charger: Mapping[Any, Any], data: dict[str, Any]) -> dict[str, Any]:
    """The rules plus what only the charger and the clock tell, all errors collected as Laravel does."""
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    for name, rule in CREATE_RULES.items():  # field by field: the fields that pass are checked further
        try:
            clean.update(validate(data, {name: rule}))
        except ValidationError as error:
            errors.update(error.errors)
    expires = clean.get("expires_at")
    found = await reservations.check_request(
        rt,
        charger,
        clean.get("connector_id"),
        clean.get("evse_id"),
        None if expires is None else parse_date(expires),
    )
    merged = {name: errors.get(name) or found[name] for name in CREATE_RULES if name in errors or name in found}
    if merged:
        raise ValidationError(merged)
    return clean


async def list_reservations(request: Request) -> Response:
    """Return a page of the charger's reservations, newest first."""
    charger = await _charger(request)
    page = page_window(request)
    rt = runtime(request)
    team_id = scope(request).team_id
    rows = await reservations.list_reservations(rt, team_id, charger, offset=page.offset, limit=page.fetch)
    return page_response(request, page, rows, lambda row: reservation_resource(row, rt))


async def create_reservation(request: Request) -> Response:
    """Reserve a connector for an id tag until `expires_at` (ReserveNow); stored only when the charger accepts."""
    charger = await _charger(request)
    rt = runtime(request)
    clean = await _validated(rt, charger, await json_body(request))
    row = await reservations.reserve(
        rt,
        scope(request).team_id,
        charger,
        connector_number=int(clean["connector_id"]),
        id_tag=str(clean["id_tag"]),
        expires_at=parse_date(clean["expires_at"]),
        evse_id=clean.get("evse_id"),
    )
    return envelope(reservation_resource(row, rt), 201)


async def cancel_reservation(request: Request) -> Response:
    """Cancel an active reservation (CancelReservation); 409 when it has ended or the charger refuses."""
    charger = await _charger(request)
    await reservations.cancel(runtime(request), scope(request).team_id, charger, path_ref(request, "reservation"))
    return no_content()


_PATH = "/api/v2/teams/{team}/chargers/{charger}/reservations"

ENDPOINTS = [
    Endpoint(
        "GET",
        _PATH,
        list_reservations,
        "Get the charger's reservations",
        "Reservations",
        query=PAGE_QUERY,
        response=ReservationResource,
        shape="page",
        guard=team_member,
    ),
    Endpoint(
        "POST",
        _PATH,
        create_reservation,
        "Reserve a connector",
        "Reservations",
        body=CREATE,
        response=ReservationResource,
        status=201,
        errors=(404, 409, 422, 504),
        guard=team_member,
    ),
    Endpoint(
        "DELETE",
        _PATH + "/{reservation}",
        cancel_reservation,
        "Cancel a reservation",
        "Reservations",
        shape="empty",
        status=204,
        errors=(404, 409, 504),
        guard=team_member,
    ),
]
