"""`/healthz`: is the process up and can it reach its database."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from voltline.api._kit import json_response
from voltline.api.auth import runtime


async def healthz(request: Request) -> Response:
    """200 with `{"status":"ok","database":"ok"}`, or 503 when the database does not answer."""
    ok = await runtime(request).db.ping()
    body = {"status": "ok" if ok else "degraded", "database": "ok" if ok else "unreachable"}
    return json_response(body, 200 if ok else 503)
