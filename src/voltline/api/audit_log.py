"""A team's audit log: who changed what, when, and the outcome (DESIGN "Services tier"), newest first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from voltline import codec
from voltline.api._contract import Contract
from voltline.api._kit import INT_MAX, PAGE_RULES, page_of, page_response, query_data
from voltline.api._routing import Endpoint
from voltline.api.auth import runtime, scope, team_member
from voltline.domain.audit import ACTOR_KINDS, OBJECT_TYPES
from voltline.domain.timestamps import format_timestamp
from voltline.services import audit

QUERY_RULES = {
    **PAGE_RULES,
    "object_type": "nullable|string|in:" + ",".join(OBJECT_TYPES),
    "object_id": "nullable|string|max:64",
    "actor_kind": "nullable|string|in:" + ",".join(ACTOR_KINDS),
    "actor_id": "nullable|string|max:36",
    "actor_user_id": f"nullable|integer|min:1|max:{INT_MAX}",
    "action": "nullable|string|max:64",
}
QUERY = Contract("AuditLogQuery", "A page of the audit log, filtered by object and actor.", QUERY_RULES)
FILTER_NAMES = ("object_type", "object_id", "actor_kind", "actor_id", "actor_user_id", "action")


class ActorResource(msgspec.Struct):
    """Who acted: `token` (id: the token's id, user_id: its owner), `user`, or `system`."""

    kind: str
    id: str | None
    user_id: int | None
    label: str | None


class AuditEntryResource(msgspec.Struct):
    """One audit-log row; `outcome` is `ok`, or a command's status word or error."""

    id: int
    at: str
    actor: ActorResource
    action: str
    object_type: str
    object_id: str | None
    outcome: str
    detail: dict[str, Any] | None


def audit_entry_resource(row: Mapping[Any, Any]) -> AuditEntryResource:
    """Shape a stored row for the API."""
    return AuditEntryResource(
        id=row["id"],
        at=format_timestamp(row["at"]) or "",
        actor=ActorResource(
            kind=row["actor_kind"], id=row["actor_id"], user_id=row["actor_user_id"], label=row["actor_label"]
        ),
        action=row["action"],
        object_type=row["object_type"],
        object_id=row["object_id"],
        outcome=row["outcome"],
        detail=None if row["detail"] is None else codec.decode_json(row["detail"]),
    )


async def list_audit_log(request: Request) -> Response:
    """Return a page of the team's audit log, newest first, filtered by object and actor."""
    clean = QUERY.validate(query_data(request))
    page = page_of(clean)
    filters = {name: clean[name] for name in FILTER_NAMES if clean.get(name) is not None}
    if "actor_user_id" in filters:
        filters["actor_user_id"] = int(filters["actor_user_id"])
    rows = await audit.list_audit_log(
        runtime(request), scope(request).team_id, filters, offset=page.offset, limit=page.fetch
    )
    return page_response(request, page, rows, audit_entry_resource)


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/v2/teams/{team}/audit-log",
        list_audit_log,
        "Get the team's audit log",
        "Audit log",
        query=QUERY,
        response=AuditEntryResource,
        shape="page",
        errors=(422,),
        guard=team_member,
    ),
]
