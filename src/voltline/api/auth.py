"""Bearer tokens to principals, the rate limits, and the team scope of a request.

Every endpoint declares a `Guard` (api/_routing.py `Endpoint.guard`): `public` (no token),
`authenticated` (a valid token, no team), `team_member` (a member of the path's `{team}`) or
`team_owner` (a member whose role is `owner`). The guard runs before the handler; the OpenAPI
document shows its security requirement and the 401/403/429 it can answer.

Token and membership look-ups are cached in the process for `auth_cache_seconds` (default
5 s): a revoked token or a removed membership stops working within that time. Setting it to 0
turns the cache off.

A request without a valid token (none, malformed or unknown) counts against its client
address's budget (`rate_limit_unauthenticated` per minute; an IPv6 address counts by its /64,
the smallest network one subscriber gets); over it the answer is a 429 instead of a 401. A
valid token is never refused for its address's budget, so callers behind one NAT with a
guessing neighbour keep working.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, NoReturn

from starlette.requests import Request

from voltline.api._kit import path_ref
from voltline.api.ratelimit import RateLimiter
from voltline.domain.credentials import hash_api_token
from voltline.domain.ids import Ref, TeamId, UserId
from voltline.domain.tenancy import Principal, TeamScope
from voltline.errors import AuthenticationError, PermissionDeniedError, RateLimitedError
from voltline.services import accounts
from voltline.services.runtime import Runtime

CACHE_LIMIT = 50_000
IPV6_SUBSCRIBER_PREFIX = 64


@dataclass
class AuthCache:
    """Recent answers of the token and membership look-ups, each kept for `ttl` seconds."""

    ttl: float
    tokens: dict[str, tuple[float, Principal | None]] = field(default_factory=dict)
    teams: dict[tuple[UserId, Ref], tuple[float, TeamId | None]] = field(default_factory=dict)

    def fresh(self, entry: tuple[float, object] | None, now: float) -> bool:
        """True when the cached entry may still be used."""
        return entry is not None and now - entry[0] < self.ttl

    def remember_token(self, token_hash: str, now: float, principal: Principal | None) -> None:
        """Keep a token answer (also a negative one)."""
        if self.ttl > 0:
            _bounded(self.tokens)[token_hash] = (now, principal)

    def remember_team(self, key: tuple[UserId, Ref], now: float, team_id: TeamId | None) -> None:
        """Keep a membership answer (also a negative one)."""
        if self.ttl > 0:
            _bounded(self.teams)[key] = (now, team_id)


def _bounded(cache: dict[Any, Any]) -> dict[Any, Any]:
    if len(cache) >= CACHE_LIMIT:
        cache.clear()
    return cache


def auth_cache(request: Request) -> AuthCache:
    """The app's auth cache."""
    cache: AuthCache = request.app.state.auth_cache
    return cache


def runtime(request: Request) -> Runtime:
    """The process runtime the app was created with."""
    rt: Runtime = request.app.state.runtime
    return rt


async def authenticate(request: Request) -> Principal:
    """The principal behind `Authorization: Bearer <token>`; 401 otherwise."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        _refuse(request)
    rt, cache = runtime(request), auth_cache(request)
    token_hash, now = hash_api_token(token), rt.clock.monotonic()
    entry = cache.tokens.get(token_hash)
    if cache.fresh(entry, now):
        principal = entry[1] if entry else None
    else:
        principal = await accounts.find_principal(rt.db, token_hash)
        cache.remember_token(token_hash, now, principal)
    if principal is None:
        _refuse(request)
    request.state.principal = principal
    return principal


def client_address(request: Request) -> str:
    """The address the request came from (the ASGI peer); "" when the server does not know it."""
    return request.client.host if request.client is not None else ""


def address_key(address: str) -> str:
    """What an address's budget is kept under: the address, or its /64 for IPv6."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:  # an IPv4 peer on a dual-stack socket
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/{IPV6_SUBSCRIBER_PREFIX}", strict=False))
    return str(parsed)


def _refuse(request: Request) -> NoReturn:
    """401 for a request without a valid token, or 429 once its address has spent its budget."""
    limiter: RateLimiter = request.app.state.guest_rate_limiter
    if limiter.limit > 0:
        result = limiter.hit(address_key(client_address(request)), runtime(request).clock.monotonic())
        if not result.allowed:
            raise RateLimitedError(result.retry_after, result.limit)
    raise AuthenticationError


def consume_rate_limit(request: Request, principal: Principal) -> dict[str, str]:
    """Count the request against the token's budget; headers for the response, or 429."""
    limiter = request.app.state.rate_limiter
    if limiter.limit <= 0:
        return {}
    result = limiter.hit(principal.token_id, runtime(request).clock.monotonic())
    if not result.allowed:
        raise RateLimitedError(result.retry_after, result.limit)
    return {"X-RateLimit-Limit": str(result.limit), "X-RateLimit-Remaining": str(result.remaining)}


async def team_scope(request: Request, principal: Principal) -> TeamScope:
    """The `{team}` of the path, if the principal is a member; 403 for any other team."""
    try:
        ref = path_ref(request, "team")
    except Exception:
        raise PermissionDeniedError from None
    rt, cache = runtime(request), auth_cache(request)
    key, now = (principal.user_id, ref), rt.clock.monotonic()
    entry = cache.teams.get(key)
    if cache.fresh(entry, now):
        team_id = entry[1] if entry else None
    else:
        team_id = await accounts.find_member_team_id(rt.db, principal.user_id, ref)
        cache.remember_team(key, now, team_id)
    if team_id is None:
        raise PermissionDeniedError
    return TeamScope(team_id=team_id, principal=principal)


async def require_role(request: Request, team: TeamScope, role: str) -> None:
    """403 unless the principal holds `role` in the scoped team (asked afresh: roles are rare checks)."""
    held = await accounts.find_member_role(runtime(request).db, team.principal.user_id, team.team_id)
    if held != role:
        raise PermissionDeniedError


@dataclass(frozen=True)
class Guard:
    """Who may call an endpoint: checked before its handler runs."""

    name: str
    token: bool
    team: bool
    role: str | None = None

    async def enforce(self, request: Request) -> dict[str, str]:
        """Authenticate, count the rate limit and scope to the team as declared; the limit headers."""
        if not self.token:
            return {}
        principal = await authenticate(request)
        headers = consume_rate_limit(request, principal)
        if self.team:
            request.state.scope = await team_scope(request, principal)
            if self.role is not None:
                await require_role(request, request.state.scope, self.role)
        return headers


public = Guard("public", token=False, team=False)
authenticated = Guard("authenticated", token=True, team=False)
team_member = Guard("team_member", token=True, team=True)
team_owner = Guard("team_owner", token=True, team=True, role="owner")


def scope(request: Request) -> TeamScope:
    """The team scope resolved for this request."""
    team: TeamScope = request.state.scope
    return team
