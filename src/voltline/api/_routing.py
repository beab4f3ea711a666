"""The route table: each endpoint declared once, wrapped with its guard, limits and error mapping.

An `Endpoint` is the one declaration of an operation: its path and handler, its body contract
(api/_contract.py: the Laravel rules from which the handler's validation, the Struct and the
OpenAPI schema all follow), its query rules, its response Struct and its guard (api/auth.py:
`public`, `authenticated`, `team_member`, `team_owner`). `wrap()` enforces the guard before the
handler runs; an endpoint without a guard is refused when the routes are built.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from voltline.api import auth
from voltline.api._contract import Contract
from voltline.api._kit import BadRequestError, message, validation_response
from voltline.domain.audit import SYSTEM, token_actor
from voltline.errors import (
    AuthenticationError,
    ChargerNotBootedError,
    ChargerOfflineError,
    ChargerTimeoutError,
    CommandFailedError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ValidationError,
)
from voltline.services.audit import acting_as

log = logging.getLogger("voltline.api")

Handler = Callable[[Request], Awaitable[Response]]
Shape = Literal["data", "page", "list", "raw", "empty", "file"]  # file: bytes of any media type


@dataclass(frozen=True)
class Endpoint:
    """One operation: where it lives, what it takes and returns (for OpenAPI), and its handler."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    body: Contract | None = None
    query: Contract | None = None
    response: Any = None
    shape: Shape = "data"
    status: int = 200
    errors: tuple[int, ...] = ()
    guard: auth.Guard | None = None


def _error_response(error: Exception) -> Response:
    if isinstance(error, ValidationError):
        return validation_response(error)
    if isinstance(error, BadRequestError):
        return message(str(error), 400)
    if isinstance(error, AuthenticationError):
        return message("Unauthenticated.", 401)
    if isinstance(error, PermissionDeniedError):
        return message("This action is unauthorized.", 403)
    if isinstance(error, NotFoundError):
        return message("Not found.", 404)
    if isinstance(error, ChargerNotBootedError):
        return message("The charger has not booted yet.", 409)
    if isinstance(error, ChargerOfflineError):
        return message("The charger is offline.", 409)
    if isinstance(error, ConflictError):
        return message(str(error), 409)
    if isinstance(error, CommandFailedError):
        return message(str(error), 502)
    if isinstance(error, ChargerTimeoutError):
        return message("The charger did not respond in time.", 504)
    if isinstance(error, RateLimitedError):
        return message("Too Many Attempts.", 429, {"Retry-After": str(error.retry_after)})
    raise error


def declared_guard(endpoint: Endpoint) -> auth.Guard:
    """The endpoint's guard; an endpoint must declare one (none is no default)."""
    if endpoint.guard is None:
        raise ValueError(f"{endpoint.method} {endpoint.path} declares no guard")
    return endpoint.guard


def wrap(endpoint: Endpoint) -> Handler:
    """The ASGI-facing handler: enforce the guard (token, limit, team, role), run as the token's actor, map errors."""
    guard = declared_guard(endpoint)

    async def handle(request: Request) -> Response:
        limit_headers: dict[str, str] = {}
        actor = SYSTEM
        try:
            limit_headers = await guard.enforce(request)
            principal = getattr(request.state, "principal", None)  # set by a token guard's authenticate
            if principal is not None:
                actor = token_actor(principal.token_id, principal.user_id, principal.email)
            with acting_as(actor):  # the services' audit rows name the token (DESIGN "Services tier")
                response = await endpoint.handler(request)
        except (ValidationError, BadRequestError, AuthenticationError, PermissionDeniedError) as error:
            response = _error_response(error)
        except (NotFoundError, ConflictError, ChargerOfflineError, ChargerTimeoutError, CommandFailedError) as error:
            response = _error_response(error)
        except RateLimitedError as error:
            response = _error_response(error)
            limit_headers = {"X-RateLimit-Limit": str(error.limit), "X-RateLimit-Remaining": "0"}
        response.headers.update(limit_headers)
        return response

    handle.__name__ = endpoint.handler.__name__
    handle.__doc__ = endpoint.handler.__doc__
    return handle


def _by_method(handlers: Mapping[str, Handler]) -> Handler:
    """One handler for every method a path serves; HEAD is answered by GET (RFC 9110 §9.3.2)."""

    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await handlers[method](request)

    dispatch.__name__ = "_".join(handler.__name__ for handler in handlers.values())
    return dispatch


def build_routes(endpoints: list[Endpoint]) -> list[Route]:
    """Starlette routes for the table, one per path in first-seen order.

    One route per path makes a 405's `Allow` list every method the path serves (RFC 9110
    §15.5.6), where a route per method would list only the first route's.
    """
    by_path: dict[str, dict[str, Handler]] = {}
    for ep in endpoints:
        by_path.setdefault(ep.path, {})[ep.method] = wrap(ep)
    return [Route(path, _by_method(handlers), methods=list(handlers)) for path, handlers in by_path.items()]
