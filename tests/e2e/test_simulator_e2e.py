"""The simulator against a real server: chargers boot, charge and stop; the REST API shows it all (DESIGN "Simulator").

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
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx

from tests.conftest import LiveServer
from tests.support.simulated import (
    CONNECTORS,
    EAIR,
    RecordingCharger,
    make_chargers,
    parse_time,
    simulate,
)
from voltline.services.accounts import Account
from voltline.simulator.sessions import timestamp


def round_half_up_kwh(wh: int) -> str:
    """spec C11: round_half_up(Wh / 1000, 2), computed here independently of the server."""
    return str((Decimal(wh) / 1000).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


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
    """DESIGN "Simulator": connection status, connector statuses, transactions and meter values from the simulator."""
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
