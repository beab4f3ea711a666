"""Charging sessions made through a real charger connection, and the transactions API as the tests read it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.conftest import LiveServer
from tests.ocpp.gateway_support import Raw, identity_only, open_charger, run
from tests.support.sites import make_site
from voltline.services.accounts import Account


@dataclass
class Place:
    """A site of the account's team with a charger on it."""

    account: Account
    site: dict[str, Any]
    charger: dict[str, Any]

    @property
    def team(self) -> str:
        return f"/api/v2/teams/{self.account.team_id}"

    @property
    def site_transactions(self) -> str:
        return f"{self.team}/sites/{self.site['id']}/transactions"

    def charger_transactions(self, charger: dict[str, Any] | None = None) -> str:
        return f"{self.team}/chargers/{(charger or self.charger)['id']}/transactions"

    def add_charger(self, api: httpx.Client) -> dict[str, Any]:
        """Another charger on the same site."""
        return site_charger(api, self.team, self.site["id"])


def site_charger(api: httpx.Client, team: str, site_id: int) -> dict[str, Any]:
    """A new charger on the site, made through the API."""
    response = api.post(f"{team}/sites/{site_id}/chargers", json={"identity": f"TX-{uuid.uuid4().hex[:12]}"})
    assert response.status_code == 201, response.text
    charger: dict[str, Any] = identity_only(api, team, response.json()["data"])
    return charger


def make_place(api: httpx.Client, account: Account, **prices: Any) -> Place:
    """A fresh site (with prices set through PUT, if given) with one charger."""
    team = f"/api/v2/teams/{account.team_id}"
    site = make_site(api, account)
    if prices:
        response = api.put(f"{team}/sites/{site['id']}", json=prices)
        assert response.status_code == 200, response.text
    return Place(account, site, site_charger(api, team, site["id"]))


@dataclass
class Session:
    """One charging session as a charger reports it; `stopped` None leaves it active."""

    meter_start: int
    started: str
    meter_stop: int | None = None
    stopped: str | None = None
    reason: str | None = "EVDisconnected"
    id_tag: str = "WRSI4902"
    connector: int = 1
    reservation_id: int | None = None
    registers: tuple[tuple[str, int], ...] = ()

    def start_payload(self) -> dict[str, Any]:
        payload = {
            "connectorId": self.connector,
            "idTag": self.id_tag,
            "meterStart": self.meter_start,
            "timestamp": self.started,
        }
        return payload if self.reservation_id is None else {**payload, "reservationId": self.reservation_id}

    def meter_values(self, transaction_id: int) -> dict[str, Any]:
        readings = [
            {"timestamp": at, "sampledValue": [{"value": str(wh), "measurand": "Energy.Active.Import.Register"}]}
            for at, wh in self.registers
        ]
        return {"connectorId": self.connector, "transactionId": transaction_id, "meterValue": readings}

    def stop_payload(self, transaction_id: int) -> dict[str, Any]:
        payload = {"transactionId": transaction_id, "meterStop": self.meter_stop, "timestamp": self.stopped}
        return payload if self.reason is None else {**payload, "reason": self.reason}


def charge(server: LiveServer, identity: str, *sessions: Session) -> list[int]:
    """Run the sessions over one OCPP connection; their transaction ids (the writer flushed afterwards)."""

    async def scenario() -> list[int]:
        ids = []
        async with open_charger(server, identity) as ws:
            peer = Raw(ws)
            for session in sessions:
                started = await peer.result("StartTransaction", session.start_payload())
                ids.append(int(started["transactionId"]))
                if session.registers:
                    await peer.result("MeterValues", session.meter_values(ids[-1]))
                if session.stopped is not None:
                    await peer.result("StopTransaction", session.stop_payload(ids[-1]))
        return ids

    ids: list[int] = run(scenario())
    server.run(server.runtime.writer.flush)
    return ids


def listed(response: httpx.Response) -> list[dict[str, Any]]:
    """The `data` of a 200 list response."""
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def get(api: httpx.Client, url: str, params: dict[str, Any] | None = None, body: Any = None) -> httpx.Response:
    """A GET with query parameters and, optionally, a JSON body."""
    if body is None:
        return api.get(url, params=params)
    return api.request("GET", url, params=params, json=body)
