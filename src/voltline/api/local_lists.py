"""A charger's local authorization list (OCPP 1.6 §3.5.3): its state, and a Full update on demand."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from voltline.api._kit import envelope, path_ref
from voltline.api._routing import Endpoint
from voltline.api.auth import runtime, scope, team_member
from voltline.domain.timestamps import format_timestamp
from voltline.services import chargers, local_lists
from voltline.store.local_lists import entries_of


class LocalListResource(msgspec.Struct):
    """What the charger's local list holds as we last set it, whether it is on, and the last sync."""

    version: int
    entries: int
    enabled: bool
    supported: bool | None
    max_length: int | None
    chunk_length: int | None
    last_sync_at: str | None
    last_outcome: str | None


def local_list_resource(row: Mapping[Any, Any] | None) -> LocalListResource:
    """Shape a local-list row (None: nothing read or sent yet) for the API."""
    if row is None:
        return LocalListResource(0, 0, False, None, None, None, None, None)
    enabled = row["enabled"] if row["enabled"] is not None else bool(row["supported"])
    return LocalListResource(
        version=int(row["version"]),
        entries=len(entries_of(row)),  # type: ignore[arg-type]
        enabled=bool(enabled),
        supported=row["supported"],
        max_length=row["max_length"],
        chunk_length=row["chunk_length"],
        last_sync_at=format_timestamp(row["last_sync_at"]),
        last_outcome=row["last_outcome"],
    )


async def get_local_list(request: Request) -> Response:
    """Return the charger's local list state."""
    _, row = await local_lists.get_local_list(runtime(request), scope(request).team_id, path_ref(request, "charger"))
    return envelope(local_list_resource(row))


async def sync_local_list(request: Request) -> Response:
    """Send the charger its full local list now; answers with the outcome (409 offline or refused, 504 timeout)."""
    rt, team_id = runtime(request), scope(request).team_id
    charger = await chargers.get_charger(rt, team_id, path_ref(request, "charger"))
    row = await local_lists.sync_now(rt, team_id, charger)
    return envelope(local_list_resource(row))


_PATH = "/api/v2/teams/{team}/chargers/{charger}/local-list"

ENDPOINTS = [
    Endpoint(
        "GET",
        _PATH,
        get_local_list,
        "Get the local authorization list",
        "Local authorization list",
        response=LocalListResource,
        errors=(404,),
        guard=team_member,
    ),
    Endpoint(
        "POST",
        f"{_PATH}/sync",
        sync_local_list,
        "Send the full local authorization list",
        "Local authorization list",
        response=LocalListResource,
        errors=(404, 409, 504),
        guard=team_member,
    ),
]
