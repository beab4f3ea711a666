"""v3 OCPP logs (spec volttime-v3 §3.12): each call a charger or Voltline made, with its answer.

An entry is one CALL from the message log paired with its CALLRESULT (`done`) or CALLERROR
(`failed`); none yet is `pending`. `destination` is `centralsystem` for a call from the charger
and `charger` for one from Voltline; `params` is the OCPP payload object (camelCase), `result`
the answer's payload (null while pending). Newest first unless `sort=created_at`; the team reads
only what v2's log shows it (DESIGN: Charger security). `filter_options.methods` lists every
method of the charger's log.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from voltline import codec
from voltline.api._contract import Contract
from voltline.api._kit import PAGE_RULES, Page, json_response, page_of, page_response, query_data
from voltline.api._routing import Endpoint
from voltline.api.auth import authenticated, runtime
from voltline.api.logs import parse_payload
from voltline.api.v3._common import V3, charger_team
from voltline.domain.timestamps import format_timestamp
from voltline.errors import ValidationError
from voltline.services import reach
from voltline.store.reach import CallFilter

# spec v3 §3.12: `filter[hide_insignificant]=1` hides these.
INSIGNIFICANT = ("MeterValues", "SetChargingProfile")
DESTINATIONS = {"centralsystem": "in", "charger": "out"}
QUERY_RULES = {
    **PAGE_RULES,
    "filter[method]": "nullable|string|max:64",
    "filter[status]": "nullable|in:pending,done,failed",
    "filter[destination]": "nullable|in:centralsystem,charger",
    "filter[hide_insignificant]": "nullable|boolean",
    "filter[date_from]": "nullable|string|max:19",
    "filter[date_to]": "nullable|string|max:19",
    "sort": "nullable|in:created_at,-created_at",
}
QUERY = Contract("V3LogsQuery", "A page of the charger's OCPP calls, filtered (spec v3 §3.12).", QUERY_RULES)


class V3LogEntryResource(msgspec.Struct):
    """One OCPP call and its answer."""

    id: int
    charger_id: int
    status: str
    version: str
    method: str | None
    destination: str
    params: Any
    result: Any
    created_at: str
    updated_at: str


class FilterOptions(msgspec.Struct):
    """The values `filter[method]` can take for this charger."""

    methods: list[str]


class V3LogsPage(msgspec.Struct):
    """A simple page of log entries, with the filter options."""

    data: list[V3LogEntryResource]
    links: dict[str, str | None]
    meta: dict[str, Any]
    filter_options: FilterOptions


def entry(call: Mapping[Any, Any], answer: Mapping[Any, Any] | None) -> V3LogEntryResource:
    """Shape a call and its answer as a v3 log entry."""
    status = "pending" if answer is None else ("done" if answer["message_type"] == 3 else "failed")
    return V3LogEntryResource(
        id=call["id"],
        charger_id=call["charger_id"],
        status=status,
        version="1.6",
        method=call["action"],
        destination="centralsystem" if call["direction"] == "in" else "charger",
        params=parse_payload(call["payload"]),
        result=None if answer is None else parse_payload(answer["payload"]),
        created_at=format_timestamp(call["created_at"]) or "",
        updated_at=format_timestamp((answer or call)["created_at"]) or "",
    )


def _moment(clean: Mapping[str, Any], field: str, *, end: bool) -> datetime | None:
    """`Y-m-d H:i:s`, or a `Y-m-d` day (its first or last second), in UTC; 422 otherwise."""
    text = clean.get(field)
    if text is None:
        return None
    for form, suffix in (("%Y-%m-%d %H:%M:%S", ""), ("%Y-%m-%d", " 23:59:59" if end else " 00:00:00")):
        try:
            day_or_moment = datetime.strptime(str(text), form)
        except ValueError:
            continue
        return (
            datetime.strptime(day_or_moment.strftime("%Y-%m-%d") + suffix, "%Y-%m-%d %H:%M:%S")
            if suffix
            else day_or_moment
        )
    raise ValidationError.single(field, f"The {field} field must match the format Y-m-d H:i:s.")


async def v3_list_logs(request: Request) -> Response:
    """Return a page of the charger's OCPP calls with their answers, newest first."""
    team_id, uuid = await charger_team(request)
    clean = QUERY.validate(query_data(request))
    page: Page = page_of(clean)
    destination = clean.get("filter[destination]")
    wanted = CallFilter(
        method=clean.get("filter[method]"),
        status=clean.get("filter[status]"),
        direction=None if destination is None else DESTINATIONS[destination],
        hidden=INSIGNIFICANT if clean.get("filter[hide_insignificant]") else (),
        date_from=_moment(clean, "filter[date_from]", end=False),
        date_to=_moment(clean, "filter[date_to]", end=True),
        newest_first=clean.get("sort") != "created_at",
    )
    found = await reach.list_call_log(runtime(request), team_id, uuid, wanted, offset=page.offset, limit=page.fetch)
    listed = page_response(request, page, found.calls, lambda pair: entry(*pair))
    body = codec.decode_json(bytes(listed.body))
    body["filter_options"] = {"methods": found.methods}
    return json_response(body)


ENDPOINTS = [
    Endpoint(
        "GET",
        f"{V3}/chargers/{{charger}}/logs",
        v3_list_logs,
        "Get the OCPP logs of a charger",
        "v3 Logs",
        query=QUERY,
        response=V3LogsPage,
        shape="raw",
        errors=(422,),
        guard=authenticated,
    ),
]
