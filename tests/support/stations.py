"""A charger that sends meter values over OCPP, and the sampled values it sends."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.conftest import LiveServer
from tests.ocpp.gateway_support import Raw, identity_only, open_charger, run
from tests.support.sites import make_site
from voltline.services.accounts import Account


def stamp(moment: datetime) -> str:
    """An OCPP timestamp with milliseconds."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=(datetime.now(UTC).microsecond // 1000) * 1000)


def current(phase: str, amps: str) -> dict[str, str]:
    return {"value": amps, "measurand": "Current.Import", "phase": phase, "unit": "A"}


def power(watts: str, unit: str = "W") -> dict[str, str]:
    return {"value": watts, "measurand": "Power.Active.Import", "unit": unit}


@dataclass
class Station:
    """A charger on a site of the account's team, with connectors 1 and 2 reported Available."""

    account: Account
    site: dict[str, Any]
    charger: dict[str, Any]
    connectors: dict[int, dict[str, Any]]

    @property
    def base(self) -> str:
        return f"/api/v2/teams/{self.account.team_id}"

    def site_url(self, connector: int | str) -> str:
        return f"{self.base}/sites/{self.site['id']}/connectors/{connector}/power-usage"

    def charger_url(self, number: int | str, charger: int | str | None = None) -> str:
        return f"{self.base}/chargers/{charger or self.charger['id']}/connectors/{number}/power-usage"


def make_station(server: LiveServer, api: httpx.Client, account: Account) -> Station:
    site = make_site(api, account)
    identity = f"PU-{uuid.uuid4().hex[:12]}"
    url = f"/api/v2/teams/{account.team_id}/sites/{site['id']}/chargers"
    charger = identity_only(api, account, api.post(url, json={"identity": identity}).json()["data"])

    async def boot() -> None:
        async with open_charger(server, identity) as ws:
            peer = Raw(ws)
            for number in (1, 2):
                status = {"connectorId": number, "errorCode": "NoError", "status": "Available"}
                await peer.result("StatusNotification", status)

    run(boot())
    body = api.get(f"/api/v2/teams/{account.team_id}/chargers/{charger['id']}").json()["data"]
    return Station(account, site, charger, {c["connector_id"]: c for c in body["connectors"]})


def send(
    server: LiveServer,
    station: Station,
    frames: list[tuple[int, datetime, list[dict[str, str]]]],
    *,
    start: int | None = None,
    stop: bool = False,
) -> None:
    """MeterValues frames (connector, time, samples); optionally inside a transaction on `start`, then stopped."""

    async def scenario() -> None:
        async with open_charger(server, station.charger["identity"]) as ws:
            peer = Raw(ws)
            transaction_id = None
            if start is not None:
                begin = {"connectorId": start, "idTag": "TAG1", "meterStart": 0, "timestamp": stamp(utc_now())}
                transaction_id = (await peer.result("StartTransaction", begin))["transactionId"]
            for connector, at, sampled in frames:
                payload: dict[str, Any] = {
                    "connectorId": connector,
                    "meterValue": [{"timestamp": stamp(at), "sampledValue": sampled}],
                }
                if transaction_id is not None and connector == start:
                    payload["transactionId"] = transaction_id
                await peer.result("MeterValues", payload)
            if stop and transaction_id is not None:
                end = {"transactionId": transaction_id, "meterStop": 100, "timestamp": stamp(utc_now())}
                await peer.result("StopTransaction", end)

    run(scenario())
    server.run(server.runtime.writer.flush)
