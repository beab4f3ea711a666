"""`/metrics` for Prometheus, behind its own bearer token, and the HTTP request metrics middleware.

The route exists only when `VOLTLINE_METRICS_TOKEN` is set (otherwise `/metrics` is a 404 like
any unknown path). It answers 401 `{"message":"Unauthenticated."}` unless the request carries
`Authorization: Bearer <that token>` (compared in constant time), and the exposition of this
app's registry (voltline/metrics.py) otherwise. It is not an API operation and stays out of the
OpenAPI document.
"""

from __future__ import annotations

import hmac
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voltline.api._kit import message
from voltline.api.auth import runtime
from voltline.metrics import CONTENT_TYPE, UNMATCHED, Metrics


async def metrics_page(request: Request) -> Response:
    """The Prometheus exposition, for the holder of the metrics token."""
    current = runtime(request)
    scheme, _, supplied = request.headers.get("authorization", "").partition(" ")
    expected = current.settings.metrics_token.encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(supplied.strip().encode(), expected):
        return message("Unauthenticated.", 401, {"WWW-Authenticate": "Bearer"})
    return Response(current.metrics.exposition(), media_type=CONTENT_TYPE)


class HttpMetrics:
    """Counts each HTTP request by method, route template and status, and times it.

    The route is the template the router matched (`/api/v2/teams/{team}/chargers/{charger}`),
    never the raw path (unbounded and full of ids); a path no route serves is `unmatched`. A
    request that ends in an exception before any answer is counted as the 500 it becomes.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.counts = metrics.http

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(msg: Message) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
            await send(msg)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = getattr(scope.get("route"), "path_format", UNMATCHED)
            self.counts.request(scope["method"], route, status, time.perf_counter() - started)
