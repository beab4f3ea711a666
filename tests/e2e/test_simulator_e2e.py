"""The simulator against a real server: chargers boot, charge and stop; the REST API shows it all (issue 3).

A site and three chargers are made through the API; three `SimulatedCharger`s (two connectors,
MeterValues every 0.1 s, sessions of about a second) run against the server's `/ocpp` endpoint
while the test watches the API. Then new sessions are held back, the running ones finish, the
chargers stop and disconnect, and the API must show exactly what the simulator says it did:
its transactions (meter_start, meter_stop, total_kwh, stop reason, id tag, connector) and every
meter value it had acknowledged, with each connector's energy register never going down.
Runs on SQLite and PostgreSQL (the `server` fixture).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx

from tests.conftest import LiveServer
from tests.ocpp.gateway_support import charger_security
from voltline.services.accounts import Account
from voltline.simulator import SimulatedCharger
from voltline.simulator.connection import Payload
from voltline.simulator.sessions import timestamp

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


def round_half_up_kwh(wh: int) -> str:
    """spec C11: round_half_up(Wh / 1000, 2), computed here independently of the server."""
    return str((Decimal(wh) / 1000).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


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


def check_transactions(api: httpx.Client, team: str, charger: dict[str, Any], cp: RecordingCharger) -> int:
    """The API's transactions of the charger are the simulator's finished ones, field for field."""
    connectors = api.get(f"{team}/chargers/{charger['id']}").json()["data"]["connectors"]
    connector_ref = {c["connector_id"]: c["id"] for c in connectors}
    assert sorted(connector_ref) == list(range(1, CONNECTORS + 1))
    assert all(c["status"] == "Available" for c in connectors), connectors
    listed = api.get(f"{team}/chargers/{charger['id']}/transactions", params={"order_by": "asc"}).json()["data"]
    by_id = {item["id"]: item for item in listed}
    assert cp.transactions == {} and len(cp.finished) >= 1
    assert sorted(by_id) == sorted(tx.transaction_id or 0 for tx in cp.finished)
    for tx in cp.finished:
        assert tx.meter_stop is not None and tx.transaction_id is not None
        item = by_id[tx.transaction_id]
        assert (item["meter_start"], item["meter_stop"]) == (tx.meter_start, tx.meter_stop)
        assert item["total_kwh"] == round_half_up_kwh(tx.meter_stop - tx.meter_start)
        assert (item["id_tag"], item["stop_reason"]) == (tx.id_tag, tx.reason)
        assert (item["charger_id"], item["charger_connector_id"]) == (charger["id"], connector_ref[tx.connector_id])
        assert item["stopped_at"] is not None
        assert parse_time(item["started_at"]) == parse_time(timestamp(tx.started_at))
    return len(cp.finished)


def check_meter_values(api: httpx.Client, team: str, charger: dict[str, Any], cp: RecordingCharger) -> None:
    """The API's meter values of the charger are the samples the simulator sent; each register only grows."""
    window: dict[str, str | int] = {
        "date_from": (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S"),
        "date_to": (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S"),
        "limit": 10000,
        "order_by": "asc",
    }
    samples = api.get(f"{team}/chargers/{charger['id']}/metervalues", params=window).json()["data"]
    sent = cp.sent_samples()
    assert len(samples) == len(sent) > 0
    got = [
        (s["connector_id"], parse_time(s["timestamp"]), s["measurand"], s["phase"], s["value"], s["context"])
        for s in samples
    ]
    assert sorted(got, key=repr) == sorted(sent, key=repr)
    for number in range(1, CONNECTORS + 1):
        registers = [int(s["value"]) for s in samples if s["measurand"] == EAIR and s["connector_id"] == number]
        assert registers == sorted(registers)
        if registers:
            assert registers[-1] == cp.registers[number]
    periodic = [s for s in samples if s["context"] == "Sample.Periodic"]
    assert len(periodic) == sum(
        len(v["sampledValue"]) for a, p in cp.acknowledged if a == "MeterValues" for v in p["meterValue"]
    )


def test_simulated_chargers_charge_and_the_api_shows_it(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """Issue 3 proof: connection status, connector statuses, transactions and meter values from the simulator."""
    site, chargers = make_chargers(api, account)
    simulated = asyncio.run(simulate(server, account, chargers))
    server.run(server.runtime.writer.flush)
    team = f"/api/v2/teams/{account.team_id}"
    total = sum(check_transactions(api, team, charger, cp) for charger, cp in zip(chargers, simulated, strict=True))
    for charger, cp in zip(chargers, simulated, strict=True):
        check_meter_values(api, team, charger, cp)
    site_url = f"{team}/sites/{site['id']}/transactions"
    finished = api.get(site_url, params={"status": "finished", "per_page": 100}).json()["data"]
    assert len(finished) == total
    assert api.get(site_url, params={"status": "active"}).json()["data"] == []
    started = [parse_time(item["started_at"]) for item in finished]
    assert started == sorted(started, reverse=True)
