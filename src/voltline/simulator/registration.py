"""Register simulated charger identities on a site through the v2 REST API before they connect."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

IDENTITY_TAKEN = "The identity has already been taken."


class RegistrationError(Exception):
    """The API refused the registration (bad token, unknown site, unreachable server...)."""


@dataclass
class Registered:
    """How the identities were registered, and on which team."""

    team: str
    created: int = 0
    existing: int = 0


def _message(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("message", body)) if isinstance(body, dict) else str(body)[:200]


async def _first_team(client: httpx.AsyncClient) -> str:
    response = await client.get("/api/v2/teams")
    if response.status_code != 200:
        raise RegistrationError(f"GET /api/v2/teams answered {response.status_code}: {_message(response)}")
    teams = response.json().get("data") or []
    if not teams:
        raise RegistrationError("the token's user belongs to no team; pass --team")
    return str(teams[0]["id"])


async def _register(client: httpx.AsyncClient, path: str, identity: str) -> bool:
    """POST one identity; True when created, False when it already existed."""
    while True:
        response = await client.post(path, json={"identity": identity})
        if response.status_code == 429:
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
            continue
        if response.status_code == 201:
            return True
        errors = response.json().get("errors", {}) if response.status_code == 422 else {}
        if errors.get("identity") == [IDENTITY_TAKEN]:
            return False
        raise RegistrationError(f"POST {path} for {identity} answered {response.status_code}: {_message(response)}")


async def register_chargers(
    api_url: str,
    token: str,
    site: str,
    identities: list[str],
    *,
    team: str | None = None,
    advance: Callable[[], None] | None = None,
) -> Registered:
    """Create each identity on the site (a 422 "already been taken" counts as registered)."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    try:
        async with httpx.AsyncClient(base_url=api_url.rstrip("/"), headers=headers, timeout=30) as client:
            result = Registered(team or await _first_team(client))
            path = f"/api/v2/teams/{result.team}/sites/{site}/chargers"
            for identity in identities:
                if await _register(client, path, identity):
                    result.created += 1
                else:
                    result.existing += 1
                if advance is not None:
                    advance()
            return result
    except httpx.HTTPError as error:
        raise RegistrationError(f"cannot reach {api_url}: {error}") from None
