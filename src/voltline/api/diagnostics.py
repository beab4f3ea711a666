"""Diagnostics uploads: ask a charger for its log file, list and download the files it uploaded.

docs/api.md "Diagnostics". The charger uploads to a one-time URL Voltline serves itself
(api/uploads.py); its base is `VOLTLINE_PUBLIC_URL`, or else the scheme and host this request
came to (the scheme through `VOLTLINE_TRUSTED_PROXIES` only, as uvicorn applies it: server.py).
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
from voltline.domain.timestamps import format_timestamp
from voltline.errors import ValidationError
from voltline.services import chargers, diagnostics

LOG_TYPES = ("diagnostics", "security")
REQUEST_RULES = {
    "log_type": "nullable|string|in:" + ",".join(LOG_TYPES),
    "start_time": f"nullable|date_format:{DATE_FORMAT}",
    "stop_time": f"nullable|date_format:{DATE_FORMAT}",
}
REQUEST = Contract(
    "DiagnosticsBody",
    "Body of commands/diagnostics: the log wanted (diagnostics, the default) and an optional time window, "
    "`Y-m-d H:i:s` in UTC.",
    REQUEST_RULES,
)
STOP_BEFORE_START = "The stop time field must be a date after start time."


class UploadAnnounced(msgspec.Struct):
    """The file name the charger announced for its upload (null when it named none)."""

    file_name: str | None


class DiagnosticsReply(msgspec.Struct):
    """The charger's answer: its status word (Accepted when it sends none) and the announced file."""

    message: str
    data: UploadAnnounced


class DiagnosticsFileResource(msgspec.Struct):
    """An uploaded diagnostics file as the API lists it (its content is the download)."""

    uuid: str
    id: int
    file_name: str
    log_type: str
    content_type: str
    size: int
    sha256: str
    created_at: str


def file_resource(row: Mapping[Any, Any]) -> DiagnosticsFileResource:
    """Shape a file row for the API."""
    return DiagnosticsFileResource(
        uuid=row["uuid"],
        id=row["id"],
        file_name=row["file_name"],
        log_type=row["log_type"],
        content_type=row["content_type"],
        size=row["size"],
        sha256=row["sha256"],
        created_at=format_timestamp(row["created_at"]) or "",
    )


async def _charger(request: Request) -> Mapping[Any, Any]:
    """The team's charger of the path (looked up before the body is checked, as Laravel binds routes first)."""
    return await chargers.get_charger(runtime(request), scope(request).team_id, path_ref(request, "charger"))


def public_base(request: Request) -> str:
    """Where chargers reach this server: VOLTLINE_PUBLIC_URL, or the scheme and host of this request."""
    configured = runtime(request).settings.public_url
    return configured or str(request.base_url)


async def request_diagnostics(request: Request) -> Response:
    """Ask the charger to upload its diagnostics (OCPP 1.6 GetDiagnostics) to a one-time Voltline URL."""
    charger = await _charger(request)
    body = REQUEST.read(await json_body(request))
    start, stop = optional_date(body.start_time), optional_date(body.stop_time)
    if start is not None and stop is not None and stop <= start:
        raise ValidationError.single("stop_time", STOP_BEFORE_START)
    answer = await diagnostics.request_upload(
        runtime(request),
        scope(request).team_id,
        charger,
        log_type=body.log_type or "diagnostics",
        window=(start, stop),
        base_url=public_base(request),
    )
    return json_response(DiagnosticsReply(message=answer.status, data=UploadAnnounced(file_name=answer.file_name)))


async def list_diagnostics_files(request: Request) -> Response:
    """Return a page of the files the charger uploaded, newest first."""
    page = page_window(request)
    rows = await diagnostics.list_files(
        runtime(request), scope(request).team_id, path_ref(request, "charger"), offset=page.offset, limit=page.fetch
    )
    return page_response(request, page, rows, file_resource)


async def download_diagnostics_file(request: Request) -> Response:
    """The uploaded file's bytes, as an attachment named by the server."""
    row = await diagnostics.get_file(
        runtime(request), scope(request).team_id, path_ref(request, "charger"), path_ref(request, "file")
    )
    headers = {
        "Content-Disposition": f'attachment; filename="{row["file_name"]}"',
        "X-Content-Type-Options": "nosniff",
    }
    return Response(bytes(row["content"]), media_type=row["content_type"], headers=headers)


_CHARGER = "/api/v2/teams/{team}/chargers/{charger}"
ENDPOINTS = [
    Endpoint(
        "POST",
        f"{_CHARGER}/commands/diagnostics",
        request_diagnostics,
        "Request a diagnostics upload",
        "Commands",
        body=REQUEST,
        response=DiagnosticsReply,
        shape="raw",
        errors=(404, 409, 422, 502, 504),
        guard=team_member,
    ),
    Endpoint(
        "GET",
        f"{_CHARGER}/diagnostics-files",
        list_diagnostics_files,
        "Get the uploaded diagnostics files",
        "Diagnostics",
        query=PAGE_QUERY,
        response=DiagnosticsFileResource,
        shape="page",
        errors=(404, 422),
        guard=team_member,
    ),
    Endpoint(
        "GET",
        f"{_CHARGER}/diagnostics-files/{{file}}",
        download_diagnostics_file,
        "Download an uploaded diagnostics file",
        "Diagnostics",
        shape="file",
        errors=(404,),
        guard=team_member,
    ),
]
