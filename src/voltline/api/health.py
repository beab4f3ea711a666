"""`/healthz` (liveness: the process answers) and `/readyz` (readiness: database writes work, bus connected).

DESIGN "Cluster": a load balancer sends traffic to a process while `/readyz` answers 200 and
restarts it only when `/healthz` stops answering; a database outage makes every process unready
at once, and restarting them would not help.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from voltline.api._kit import json_response
from voltline.api.auth import runtime


async def healthz(_request: Request) -> Response:
    """200 with `{"status":"ok"}` whenever the process answers (it does not touch the database)."""
    return json_response({"status": "ok"}, 200)


async def readyz(request: Request) -> Response:
    """200 with `{"status":"ok","database":"ok","bus":"ok"}`, or 503 naming what is not ready."""
    problem = await _database_problem(request)
    bus = "ok" if runtime(request).bus.connected else "disconnected"
    if problem is None and bus == "ok":
        return json_response({"status": "ok", "database": "ok", "bus": bus}, 200)
    return json_response({"status": "unavailable", "database": problem or "ok", "bus": bus}, 503)


async def _database_problem(request: Request) -> str | None:
    """None when writes work; else `writes failing` or `unreachable`.

    The meter writer retrying a batch means writes fail now. After another write failed, a
    probe that really writes decides. Otherwise the database only has to answer a query.
    """
    state = runtime(request)
    if state.writer.failing_since is not None:
        return "writes failing"
    if state.db.write_failure is not None:
        return None if await state.db.probe_write() else "writes failing"
    return None if await state.db.ping() else "unreachable"
