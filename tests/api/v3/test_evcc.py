"""evcc's `plugchoice` charger against Voltline (spec volttime-v3 §5), replayed over real HTTP.

A charger connects over OCPP 1.6 and reports its connector and meter values; the client pages
`GET /api/v3/chargers?page=N` to find its identity, reads the connector's status from the charger
document and the live power from `power-usage`, as evcc does (steps 2, 3, 6, 7 of §5).
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.api.v3.support import V3, get
from tests.conftest import LiveServer
from tests.ocpp.gateway_support import Raw, identity_only, open_charger, run, wait_for
from tests.support.stations import current, power, stamp, utc_now
from voltline.services.accounts import Account

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
# spec v3 §5 step 3: evcc's status mapping.
EVCC_STATUS = {
    "Available": "A",
    "Preparing": "B",
    "SuspendedEVSE": "B",
    "SuspendedEV": "B",
    "Finishing": "B",
    "Charging": "C",
}


def find_uuid(api: httpx.Client, identity: str) -> str:
    """evcc's FindUUIDByIdentity: pages 1..9 until the identity matches or a page is empty."""
    for page in range(1, 10):
        data = get(api, f"{V3}/chargers", page=page)["data"]
        if not data:
            break
        for charger in data:
            if charger["identity"] == identity:
                return str(charger["uuid"])
    raise AssertionError("charger not found")


def status(api: httpx.Client, uuid: str, connector: int = 1) -> str:
    """evcc's statusG: the `data` document's connector status, mapped to A/B/C."""
    document = get(api, f"{V3}/chargers/{uuid}")
    [found] = [c for c in document["data"]["connectors"] if c["connector_id"] == connector]
    return EVCC_STATUS[found["status"]]


def current_power(api: httpx.Client, uuid: str, connector: int = 1) -> tuple[float, list[float]]:
    """evcc's CurrentPower and Currents: `kW` x 1000 and L1..L3, strings trimmed, "-" as 0."""
    body: dict[str, Any] = get(api, f"{V3}/chargers/{uuid}/connectors/{connector}/power-usage")
    assert all(isinstance(body[key], str) for key in ("kW", "L1", "L2", "L3")), body

    def number(text: str) -> float:
        text = text.strip()
        return 0.0 if text == "-" else float(text)

    return number(body["kW"]) * 1000, [number(body[phase]) for phase in ("L1", "L2", "L3")]


def test_evcc_finds_its_charger_reads_status_and_power_while_charging_and_idle(server: LiveServer) -> None:
    account: Account = server.account()
    with server.client(account) as api:
        made = [api.post(f"{V3}/chargers", json={"identity": f"EV{n}-{account.team_id}"}).json() for n in range(30)]
        identity = made[-1]["data"]["identity"]  # on page 2 (25 per page)
        identity_only(api, account, made[-1]["data"])
        uuid = find_uuid(api, identity)
        assert uuid == made[-1]["data"]["uuid"]
        assert get(api, f"{V3}/chargers", page=3)["data"] == []

    async def charge() -> None:
        async with open_charger(server, identity) as ws:
            peer = Raw(ws)
            boot = {"chargePointVendor": "Alfen", "chargePointModel": "Eve", "firmwareVersion": "6.1.0"}
            assert (await peer.result("BootNotification", boot))["status"] == "Accepted"
            at = stamp(utc_now())
            await peer.result("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"})
            with server.client(account) as api:
                assert status(api, uuid) == "A"
                never = get(api, f"{V3}/chargers/{uuid}/connectors/1/power-usage")
                assert never == {"timestamp": None, "L1": "-", "L2": "-", "L3": "-", "kW": "0.00"}
                assert current_power(api, uuid) == (0.0, [0.0, 0.0, 0.0])
                online = get(api, f"{V3}/chargers/{uuid}")["data"]
                assert online["connection_status"] == "online"
                assert online["model"] == {"vendor": "Alfen", "name": "Eve", "is_dc": False}
                assert online["vendor_id"] == "Alfen" and online["firmware_version"] == "6.1.0"

            begin = {"connectorId": 1, "idTag": "TAG1", "meterStart": 0, "timestamp": at}
            started = (await peer.result("StartTransaction", begin))["transactionId"]
            await peer.result("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Charging"})
            sampled = [current("L1", "15.9"), current("L2", "16.0"), current("L3", "15.8"), power("11040")]
            frame = {
                "connectorId": 1,
                "transactionId": started,
                "meterValue": [{"timestamp": at, "sampledValue": sampled}],
            }
            await peer.result("MeterValues", frame)
            with server.client(account) as api:
                assert status(api, uuid) == "C"
                assert current_power(api, uuid) == (11040.0, [15.9, 16.0, 15.8])
            end = stamp(utc_now())
            await peer.result("StopTransaction", {"transactionId": started, "meterStop": 5000, "timestamp": end})
            await peer.result("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Finishing"})
            idle = [current("L1", "0"), current("L2", "0"), current("L3", "0"), power("0")]
            await peer.result(
                "MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": end, "sampledValue": idle}]}
            )
            with server.client(account) as api:
                assert status(api, uuid) == "B"
                body = get(api, f"{V3}/chargers/{uuid}/connectors/1/power-usage")
                assert (body["kW"], body["L1"], body["L2"], body["L3"]) == ("0.00", "0", "0", "0")

    run(charge())


def test_the_gateway_stamps_connection_heartbeat_and_disconnection(server: LiveServer) -> None:
    """spec v3 §3.2: `last_connection_at`, `last_heartbeat_at`, `last_disconnection_at`; `server` only while online."""
    account = server.account()
    with server.client(account) as api:
        made = api.post(f"{V3}/chargers", json={"identity": f"HB-{account.team_id}"}).json()["data"]
        identity_only(api, account, made)
    path = f"{V3}/chargers/{made['uuid']}"

    async def visit() -> None:
        async with open_charger(server, made["identity"]) as ws:
            peer = Raw(ws)
            with server.client(account) as api:
                online = get(api, path)["data"]
            assert TIMESTAMP.match(online["last_connection_at"]) and online["server"] == server.runtime.node_id
            assert online["last_heartbeat_at"] is None and online["last_disconnection_at"] is None
            await peer.result("Heartbeat", {})
            with server.client(account) as api:
                beat = get(api, path)["data"]["last_heartbeat_at"]
            assert TIMESTAMP.match(beat) and beat >= online["last_connection_at"]

    run(visit())
    with server.client(account) as api:
        wait_for(lambda: get(api, path)["data"]["connection_status"] == "offline")
        offline = get(api, path)["data"]
    assert offline["server"] is None
    assert offline["last_disconnection_at"] >= offline["last_heartbeat_at"] >= offline["last_connection_at"]
