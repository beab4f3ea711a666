"""A v3 world: an account with a site, a charger on it with connector 1, and v3 paths."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.conftest import LiveServer
from tests.ocpp.gateway_support import identity_only
from tests.support.sites import SITE_BODY
from voltline.services.accounts import Account
from voltline.store import chargers as charger_store

V3 = "/api/v3"


@dataclass
class Home:
    """One account's team with a site and a charger (connector 1 Available) on it."""

    account: Account
    team: dict[str, Any]
    site: dict[str, Any]
    charger: dict[str, Any]

    @property
    def charger_url(self) -> str:
        return f"{V3}/chargers/{self.charger['uuid']}"


def add_connector(server: LiveServer, charger_id: int, number: int = 1, **values: Any) -> None:
    async def write() -> None:
        async with server.runtime.db.write() as conn:
            await charger_store.upsert_connector(conn, charger_id, number, {"status": "Available", **values})

    server.run(write)


def make_home(server: LiveServer, name: str = "Tester") -> Home:
    account = server.account(name)
    with server.client(account) as api:
        team = api.get(f"{V3}/teams").json()["data"][0]
        site = api.post(f"{V3}/sites", json={**SITE_BODY, "team_uuid": team["uuid"]}).json()["data"]
        identity = f"V3-{uuid.uuid4().hex[:12]}"
        response = api.post(f"{V3}/chargers", json={"identity": identity, "site_uuid": site["uuid"]})
        assert response.status_code == 201, response.text
        charger = response.json()["data"]
        identity_only(api, account, charger)
    add_connector(server, charger["id"], 1, max_amperage=32)
    return Home(account, team, site, charger)


def get(api: httpx.Client, path: str, status: int = 200, **params: Any) -> Any:
    response = api.get(path, params=params or None)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()
