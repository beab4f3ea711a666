"""A charger's OCPP message log: the frames it sent and received, newest first.

DESIGN (Charger security): a team reads only the rows logged while it owned the charger, and
none from before the charger's current attachment (`chargers.attached_at`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from voltline import codec
from voltline.api._contract import Contract
from voltline.api._kit import (
    PAGE_RULES,
    page_of,
    page_response,
    path_ref,
    query_data,
)
from voltline.api._routing import Endpoint
from voltline.api.auth import runtime, scope, team_member
from voltline.domain.timestamps import format_timestamp
from voltline.services import logs

QUERY_RULES = {**PAGE_RULES, "action": "nullable|string|max:64"}
QUERY = Contract("LogsQuery", "A page of the log, filtered by OCPP action.", QUERY_RULES)


class LogEntryResource(msgspec.Struct):
    """One logged OCPP frame; `payload` is the frame's JSON payload as a value."""

    id: int
    direction: str
    message_type: int
    message_id: str
    action: str | None
    payload: Any
    created_at: str


def parse_payload(text: str) -> Any:
    """The stored payload as JSON, or the text itself when it is not JSON (a placeholder)."""
    try:
        return codec.decode_json(text)
    except codec.DecodeError:
        return text


def log_entry_resource(row: Mapping[Any, Any]) -> LogEntryResource:
    """Shape a logged frame for the API."""
    return LogEntryResource(
        id=row["id"],
        direction=row["direction"],
        message_type=row["message_type"],
        message_id=row["message_id"],
        action=row["action"],
        payload=parse_payload(row["payload"]),
        created_at=format_timestamp(row["created_at"]) or "",
    )


async def list_charger_logs(request: Request) -> Response:
    """Return a page of the charger's OCPP message log the team may read, newest first; `action` filters."""
    clean = QUERY.validate(query_data(request))
    page = page_of(clean)
    team_id, charger = scope(request).team_id, path_ref(request, "charger")
    rows = await logs.list_charger_log(
        runtime(request), team_id, charger, action=clean.get("action"), offset=page.offset, limit=page.fetch
    )
    return page_response(request, page, rows, log_entry_resource)


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/v2/teams/{team}/chargers/{charger}/logs",
        list_charger_logs,
        "Get a charger's OCPP message log",
        "Chargers",
        query=QUERY,
        response=LogEntryResource,
        shape="page",
        errors=(422,),
        guard=team_member,
    ),
]
