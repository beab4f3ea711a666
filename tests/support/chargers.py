"""Chargers and connectors made in the store or through the API, and the rows the tests read back."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conftest import LiveServer
from voltline.domain.ids import ChargerId, SiteId, TeamId
from voltline.store import chargers, sites


def unique_identity(prefix: str = "VT") -> str:
    """An identity no other test uses."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def make_site(server: LiveServer, team_id: int, name: str = "Depot") -> dict[str, Any]:
    """A site of the team (made in the store), with its root group id under `root_group_id`."""
    values = {"name": name, "street": "Main", "house_number": 1, "postal_code": "1234AB", "city": "Utrecht"}

    async def make() -> dict[str, Any]:
        async with server.runtime.db.write() as conn:
            site = await sites.create_site(conn, TeamId(team_id), {**values, "country": "NL"})
            root = await sites.get_root_group_id(conn, SiteId(site["id"]))
        return {**site, "root_group_id": root}

    return server.run(make)


def charger_row(server: LiveServer, charger_id: int) -> dict[str, Any]:
    """The stored charger row, for checks the API does not show (pincode, site, group)."""

    async def read() -> dict[str, Any]:
        async with server.runtime.db.read() as conn:
            return dict(await chargers.get_charger_by_id(conn, ChargerId(charger_id)))

    return server.run(read)


def add_connector(server: LiveServer, charger_id: int, number: int, **values: Any) -> dict[str, Any]:
    """A connector as OCPP would make it on first sight."""

    async def make() -> dict[str, Any]:
        async with server.runtime.db.write() as conn:
            return dict(await chargers.upsert_connector(conn, ChargerId(charger_id), number, values))

    return server.run(make)


def create_site_charger(api: httpx.Client, team_id: int, site_id: int | str, identity: str) -> dict[str, Any]:
    """Create a charger on a site through the API and return it."""
    response = api.post(f"/api/v2/teams/{team_id}/sites/{site_id}/chargers", json={"identity": identity})
    assert response.status_code == 201, response.text
    charger: dict[str, Any] = response.json()["data"]
    return charger


def attach(api: httpx.Client, team_id: int, site_id: int, body: dict[str, Any]) -> httpx.Response:
    """POST attach-charger."""
    return api.post(f"/api/v2/teams/{team_id}/sites/{site_id}/attach-charger", json=body)
