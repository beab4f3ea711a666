"""Simulated chargers that record what they send, and a fleet of them run against a live server."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.conftest import LiveServer
from tests.ocpp.gateway_support import charger_security
from voltline.services.accounts import Account
from voltline.simulator import SimulatedCharger
from voltline.simulator.connection import Payload

CHARGERS = 3
CONNECTORS = 2
RUN_SECONDS = 3.0
EAIR = "Energy.Active.Import.Register"
RECORDED = ("MeterValues", "StopTransaction")


class RecordingCharger(SimulatedCharger):
    """The simulator, keeping every MeterValues and StopTransaction the central system acknowledged."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acknowledged: list[tuple[str, Payload]] = []

    def queue(
        self,
        action: str,
        build: Callable[[], Payload | None],
        keep: bool = False,
        on_result: Callable[[Payload | None], None] | None = None,
    ) -> None:
        """Queue as the simulator does, and note the payload once the central system answered it."""
        built: list[Payload | None] = [None]

        def recorded_build() -> Payload | None:
            built[0] = build()
            return built[0]

        def settle(result: Payload | None) -> None:
            if action in RECORDED and result is not None and built[0] is not None:
                self.acknowledged.append((action, built[0]))
            if on_result is not None:
                on_result(result)

        super().queue(action, recorded_build, keep, settle)

    def sent_samples(self) -> list[tuple[int, datetime, str, str | None, str, str]]:
        """(connector, time, measurand, phase, value, context) of every acknowledged sampled value."""
        connector_of = {tx.transaction_id: tx.connector_id for tx in self.finished}
        found = []
        for action, payload in self.acknowledged:
            if action == "MeterValues":
                connector, readings = payload["connectorId"], payload["meterValue"]
            else:
                connector, readings = connector_of[payload["transactionId"]], payload["transactionData"]
            for reading in readings:
                at = parse_time(reading["timestamp"])
                for value in reading["sampledValue"]:
                    row = (value.get("measurand", EAIR), value.get("phase"), value["value"], value["context"])
                    found.append((connector, at, *row))
        return found


def parse_time(text: str) -> datetime:
    """An OCPP or API timestamp (`...Z`) as naive UTC."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)


async def until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Poll an async check until it is true."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


class Watcher:
    """The REST API as a client sees it during the run."""

    def __init__(self, client: httpx.AsyncClient, team: str, chargers: list[dict[str, Any]]) -> None:
        self.client, self.team, self.chargers = client, team, chargers
        self.seen: dict[int, set[str]] = {charger["id"]: set() for charger in chargers}

    async def connection_statuses(self) -> dict[int, str]:
        data = (await self.client.get(f"{self.team}/chargers")).json()["data"]
        return {item["id"]: item["connection_status"] for item in data}

    async def all_are(self, status: str) -> bool:
        statuses = await self.connection_statuses()
        return all(statuses[charger["id"]] == status for charger in self.chargers)

    async def connectors(self, charger_id: int) -> list[dict[str, Any]]:
        charger = (await self.client.get(f"{self.team}/chargers/{charger_id}")).json()["data"]
        connectors: list[dict[str, Any]] = charger["connectors"]
        return connectors

    async def watch(self, seconds: float) -> None:
        """Note every connector status the API shows for a while."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for charger in self.chargers:
                self.seen[charger["id"]] |= {c["status"] for c in await self.connectors(charger["id"])}
            await asyncio.sleep(0.05)


def idle(cp: SimulatedCharger) -> bool:
    """No session running or about to start, everything sent, every connector Available."""
    connectors = cp.connectors.values()
    quiet = all(c.transaction is None and not c.busy and c.status == "Available" for c in connectors)
    return quiet and len(cp.outbox) == 0


async def hold_back_new_sessions(simulated: list[RecordingCharger]) -> None:
    """Let running sessions finish and start no new one (the next idle gap lasts an hour)."""
    for cp in simulated:
        cp.idle_seconds = 3600.0

    async def all_idle() -> bool:
        return all(idle(cp) for cp in simulated)

    await until(all_idle, 10, "the sessions to finish")


async def simulate(server: LiveServer, account: Account, chargers: list[dict[str, Any]]) -> list[RecordingCharger]:
    """Run the simulated chargers, watch the API while they run, stop them cleanly."""
    url_base = server.base_url.replace("http://", "ws://") + "/ocpp"
    simulated = [
        RecordingCharger(
            url_base,
            charger["identity"],
            connectors=CONNECTORS,
            meter_interval=0.1,
            session_seconds=1.0,
            idle_seconds=0.3,
            unplug_seconds=0.1,
            seed=n,
            password=charger["password"],
        )
        for n, charger in enumerate(chargers)
    ]
    headers = {"Authorization": f"Bearer {account.token}", "Accept": "application/json"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=30) as client:
        watcher = Watcher(client, f"/api/v2/teams/{account.team_id}", chargers)
        assert await watcher.all_are("never_seen")
        stop = asyncio.Event()
        running = [asyncio.create_task(cp.run(stop)) for cp in simulated]
        await until(lambda: watcher.all_are("online"), 10, "the chargers to come online")
        await watcher.watch(RUN_SECONDS)
        await hold_back_new_sessions(simulated)
        assert await watcher.all_are("online")
        stop.set()
        await asyncio.wait_for(asyncio.gather(*running), 15)
        await until(lambda: watcher.all_are("offline"), 10, "the chargers to go offline")
    for charger in chargers:
        assert "Charging" in watcher.seen[charger["id"]], watcher.seen
    return simulated


def make_chargers(api: httpx.Client, account: Account) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A site and three chargers on it, made through the API, each with a generated OCPP password."""
    team = f"/api/v2/teams/{account.team_id}"
    site_body = {"name": "Depot", "street": "Main", "house_number": 1, "postal_code": "1", "city": "C", "country": "NL"}
    site = api.post(f"{team}/sites", json=site_body).json()["data"]
    chargers = []
    for _ in range(CHARGERS):
        identity = f"SIM-{uuid.uuid4().hex[:10]}"
        response = api.post(f"{team}/sites/{site['id']}/chargers", json={"identity": identity})
        assert response.status_code == 201, response.text
        charger = response.json()["data"]
        # Security profile 1 with a password the server generates, sent by the simulator with HTTP Basic.
        charger["password"] = charger_security(api, account, charger["id"], generate_password=True)["password"]
        chargers.append(charger)
    return site, chargers
