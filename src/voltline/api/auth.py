"""Bearer tokens to principals, the per-token rate limit, and the team scope of a request."""

from __future__ import annotations

from starlette.requests import Request

from voltline.api._kit import path_ref
from voltline.domain.credentials import hash_api_token
from voltline.domain.ids import UserId
from voltline.domain.tenancy import Principal, TeamScope
from voltline.errors import AuthenticationError, PermissionDeniedError, RateLimitedError
from voltline.runtime import Runtime
from voltline.store import users


def runtime(request: Request) -> Runtime:
    """The process runtime the app was created with."""
    rt: Runtime = request.app.state.runtime
    return rt


async def authenticate(request: Request) -> Principal:
    """The principal behind `Authorization: Bearer <token>`; 401 otherwise."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        raise AuthenticationError
    rt = runtime(request)
    async with rt.db.read() as conn:
        row = await users.get_active_token(conn, hash_api_token(token))
    if row is None:
        raise AuthenticationError
    principal = Principal(user_id=UserId(row["user_id"]), token_id=row["id"])
    request.state.principal = principal
    return principal


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
    async with runtime(request).db.read() as conn:
        team_id = await users.get_member_team_id(conn, principal.user_id, ref)
    if team_id is None:
        raise PermissionDeniedError
    return TeamScope(team_id=team_id, principal=principal)


def scope(request: Request) -> TeamScope:
    """The team scope resolved for this request."""
    team: TeamScope = request.state.scope
    return team
