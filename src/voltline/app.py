"""`create_app(settings)`: the one ASGI app, serving and running what the process's role starts.

DESIGN "Cluster": by role, the REST API and docs, the OCPP endpoint with the meter writer, the
control loops; every role serves health, readiness and metrics.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voltline import codec
from voltline.api import ENDPOINTS, build_routes, message
from voltline.api.auth import AuthCache
from voltline.api.health import healthz, readyz
from voltline.api.metrics import HttpMetrics, metrics_page
from voltline.api.openapi import build_openapi, docs_assets, docs_page, openapi_json
from voltline.api.ratelimit import RateLimiter
from voltline.api.uploads import UPLOADS_PREFIX, upload_routes
from voltline.bus import make_bus
from voltline.clock import Clock
from voltline.ocpp.endpoint import ocpp_endpoint
from voltline.ocpp.gateway import Gateway
from voltline.services.charge_limits import ChargeLimits
from voltline.services.charger_settings import ChargerSettings
from voltline.services.commands import Commands
from voltline.services.gateways import GatewayWatch
from voltline.services.lease import ControlLease, Duty
from voltline.services.local_lists import LocalLists
from voltline.services.maintenance import Housekeeping
from voltline.services.pricefeed import PriceFeed
from voltline.services.runtime import Runtime, ensure_secret_key
from voltline.services.smart_control.controller import SmartCharging
from voltline.settings import Settings
from voltline.store import migrate
from voltline.store.engine import Database

log = logging.getLogger("voltline")


class Service(Protocol):
    """A part of the process with a start and a stop (the writer, the gateway, the control loops)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


_STATUS_TEXT = {404: "Not found.", 405: "Method not allowed.", 413: "The request body is too large."}


class BodyLimit:
    """Refuse request bodies over `max_bytes` with a JSON 413, whether announced or streamed.

    Not under UPLOADS_PREFIX: a charger's diagnostics file has a cap of its own (api/uploads.py).
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(UPLOADS_PREFIX):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _too_large(send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(status_code=413)  # answered as JSON by _http_error
            return msg

        await self.app(scope, limited_receive, send)


async def _too_large(send: Send) -> None:
    body = codec.encode_json({"message": _STATUS_TEXT[413]})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return message(_STATUS_TEXT.get(exc.status_code, str(exc.detail)), exc.status_code, exc.headers)


async def _client_gone(_request: Request, _exc: Exception) -> Response:
    """The client left (or missed the body deadline, http_protocol.py) mid-body: nobody to answer."""
    return Response(status_code=400)


async def _server_error(_request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return message("Server Error.", 500)


@dataclass(frozen=True)
class Parts:
    """What one role serves and starts (DESIGN "Cluster"); health, readiness and metrics are served by every role."""

    rest: bool  # the REST API and its docs
    ocpp: bool  # the /ocpp endpoint, the meter writer, liveness, announcing itself (services/gateways.py)
    control: bool  # smart-charging control, housekeeping, the price feed, the watch over silent gateways


ROLE_PARTS = {
    "all": Parts(rest=True, ocpp=True, control=True),
    "api": Parts(rest=True, ocpp=False, control=False),
    "gateway": Parts(rest=False, ocpp=True, control=False),
    "worker": Parts(rest=False, ocpp=False, control=True),
}


def _control_duties(runtime: Runtime, commands: Commands) -> list[Duty]:
    """What the control lease's holder runs (DESIGN "Cluster"), made afresh for each term."""
    # PriceFeed polls ENTSO-E only when VOLTLINE_PRICE_FETCH and a token are set.
    duties: list[Duty] = [Housekeeping(runtime), PriceFeed(runtime), LocalLists(runtime, commands)]
    duties.append(ChargeLimits(runtime, commands))  # caps the controller does not enforce
    duties.append(ChargerSettings(runtime, commands))  # v3 charger settings: re-applied after boot/reconnect
    if runtime.settings.smart_control:
        duties.append(SmartCharging(runtime, commands))
    return duties


def create_app(settings: Settings, *, clock: Clock | None = None) -> ASGIApp:
    """Wire the routes, the runtime and the lifespan for the given settings and role."""
    parts = ROLE_PARTS[settings.role]
    runtime = Runtime(
        settings=settings,
        db=Database(
            settings.effective_database_url,
            busy_timeout_ms=settings.sqlite_busy_timeout_ms,
            synchronous=settings.sqlite_synchronous,
        ),
        secret_key=ensure_secret_key(settings),
        clock=clock or Clock(),
        bus=make_bus(settings.bus_url, settings.bus_prefix),
    )
    gateway = Gateway(runtime, runtime.writer) if parts.ocpp else None
    # Started in this order, stopped in the reverse one.
    services: list[Service] = [runtime.writer] if parts.ocpp else []
    if gateway is not None:
        services.append(gateway)
    # The control duties run only in the process holding the control lease (services/lease.py); the
    # gateway watch runs in every control process (its writes are idempotent, services/gateways.py).
    control = ControlLease(runtime, functools.partial(_control_duties, runtime)) if parts.control else None
    if control is not None:
        services += [GatewayWatch(runtime), control]

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if settings.is_sqlite:
            await migrate.upgrade(settings.effective_database_url)
        await runtime.bus.start()
        started: list[Service] = []
        try:
            for service in services:
                await service.start()
                started.append(service)
            yield
        finally:
            for service in reversed(started):
                await service.stop()
            await runtime.bus.close()
            await runtime.db.close()

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    if parts.rest:
        routes += [
            Route("/openapi.json", openapi_json, methods=["GET"]),
            Route("/docs", docs_page, methods=["GET"]),
            Mount("/docs/static", app=StaticFiles(directory=docs_assets()), name="docs-static"),
            *build_routes(ENDPOINTS),
        ]
    if parts.ocpp:  # elsewhere an upgrade on /ocpp matches no route and is refused (403)
        routes.append(WebSocketRoute("/ocpp/{identity}", ocpp_endpoint))
    if parts.ocpp or parts.rest:  # chargers upload where they connect (docs/api.md "Diagnostics")
        routes += upload_routes()
    if settings.metrics_token:  # unset: /metrics is a 404 like any unknown path
        routes.append(Route("/metrics", metrics_page, methods=["GET"]))
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, ClientDisconnect: _client_gone, Exception: _server_error},
        middleware=[Middleware(HttpMetrics, metrics=runtime.metrics)],
    )
    app.state.runtime = runtime
    app.state.gateway = gateway
    app.state.control = control
    app.state.rate_limiter = RateLimiter(settings.rate_limit)
    app.state.guest_rate_limiter = RateLimiter(settings.rate_limit_unauthenticated)
    app.state.auth_cache = AuthCache(settings.auth_cache_seconds)
    app.state.openapi = build_openapi(ENDPOINTS)
    return BodyLimit(app, settings.max_body_bytes)
