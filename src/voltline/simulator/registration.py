"""Register simulated charger identities on a site through the v2 REST API before they connect.

New chargers start at OCPP security profile 1 without a password (DESIGN: Charger security), so
each registered charger also gets one through `PUT .../chargers/{charger}/ocpp`: the given
password, or one the server generates for it; the simulated charger sends it with HTTP Basic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

IDENTITY_TAKEN = "The identity has already been taken."


class RegistrationError(Exception):
    """The API refused the registration (bad token, unknown site, unreachable server...)."""


@dataclass
class Registered:
    """How the identities were registered, on which team, and each one's OCPP password."""

    team: str
    created: int = 0
    existing: int = 0
    passwords: dict[str, str] = field(default_factory=dict)


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


async def _send(client: httpx.AsyncClient, method: str, path: str, body: Any = None) -> httpx.Response:
    """One API request, waiting out 429s."""
    while True:
        response = await client.request(method, path, json=body)
        if response.status_code != 429:
            return response
        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))


async def _register(client: httpx.AsyncClient, path: str, identity: str) -> str | None:
    """POST one identity; the new charger's uuid, or None when the identity already existed."""
    response = await _send(client, "POST", path, {"identity": identity})
    if response.status_code == 201:
        return str(response.json()["data"]["uuid"])
    errors = response.json().get("errors", {}) if response.status_code == 422 else {}
    if errors.get("identity") == [IDENTITY_TAKEN]:
        return None
    raise RegistrationError(f"POST {path} for {identity} answered {response.status_code}: {_message(response)}")


async def _team_chargers(client: httpx.AsyncClient, team: str) -> dict[str, str]:
    """The uuid of each charger of the team, by identity."""
    response = await _send(client, "GET", f"/api/v2/teams/{team}/chargers")
    if response.status_code != 200:
        raise RegistrationError(f"GET /api/v2/teams/{team}/chargers answered {response.status_code}")
    return {str(c["identity"]): str(c["uuid"]) for c in response.json().get("data") or []}


async def _set_password(client: httpx.AsyncClient, team: str, charger: str, password: str | None) -> str:
    """Security profile 1 with the given password, or a generated one; returns the password."""
    body: dict[str, Any] = {"security_profile": 1}
    body.update({"password": password} if password is not None else {"generate_password": True})
    path = f"/api/v2/teams/{team}/chargers/{charger}/ocpp"
    response = await _send(client, "PUT", path, body)
    if response.status_code != 200:
        raise RegistrationError(f"PUT {path} answered {response.status_code}: {_message(response)}")
    return password if password is not None else str(response.json()["data"]["password"])


async def register_chargers(
    api_url: str,
    token: str,
    site: str,
    identities: list[str],
    *,
    team: str | None = None,
    password: str | None = None,
    advance: Callable[[], None] | None = None,
) -> Registered:
    """Create each identity on the site (a 422 "already been taken" counts as registered) and give it a password.

    `password` None: the server generates one per charger (`Registered.passwords`).
    """
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    try:
        async with httpx.AsyncClient(base_url=api_url.rstrip("/"), headers=headers, timeout=30) as client:
            result = Registered(team or await _first_team(client))
            path = f"/api/v2/teams/{result.team}/sites/{site}/chargers"
            known: dict[str, str] | None = None
            for identity in identities:
                charger = await _register(client, path, identity)
                if charger is None:
                    known = known if known is not None else await _team_chargers(client, result.team)
                    if identity not in known:
                        raise RegistrationError(f"{identity} belongs to another team")
                    charger = known[identity]
                    result.existing += 1
                else:
                    result.created += 1
                result.passwords[identity] = await _set_password(client, result.team, charger, password)
                if advance is not None:
                    advance()
            return result
    except httpx.HTTPError as error:
        raise RegistrationError(f"cannot reach {api_url}: {error}") from None
