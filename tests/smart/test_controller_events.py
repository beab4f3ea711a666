"""The events that wake the control loop (spec/smart-charging.md §7.4), as a bus listener sees them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.ocpp.gateway_support import (
    BOOT,
    TIMESTAMP,
    Raw,
    identity_only,
    open_charger,
    run,
    smart_events,
    unique_identity,
)
from tests.support.chargers import charger_row
from tests.support.sites import make_site
from voltline.services.accounts import Account


@pytest.fixture
def events(server: LiveServer) -> Iterator[list[dict[str, Any]]]:
    """Every smart-charging event published while the test runs."""
    with smart_events(server) as seen:
        yield seen


def wait_for_kinds(events: list[dict[str, Any]], kinds: set[str], charger_id: int | None = None) -> None:
    """Wait until every kind was seen (for the charger, when given)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if kinds <= {e["kind"] for e in events if charger_id is None or e.get("charger_id") == charger_id}:
            return
        time.sleep(0.01)
    raise AssertionError(f"missing {kinds - {e['kind'] for e in events}}: {events}")


def test_charger_messages_publish_events_after_their_commit(
    server: LiveServer, api: httpx.Client, account: Account, events: list[dict[str, Any]]
) -> None:
    """§7.4 triggers: connect, boot, status, start, first meter value, stop, disconnect — with charger and site."""
    site = make_site(api, account)
    identity = unique_identity()
    response = api.post(f"/api/v2/teams/{account.team_id}/sites/{site['id']}/chargers", json={"identity": identity})
    charger_id = identity_only(api, account, response.json()["data"])["id"]

    async def scenario() -> None:
        async with open_charger(server, identity) as ws:
            cp = Raw(ws)
            await cp.result("BootNotification", BOOT)
            status = {"connectorId": 1, "errorCode": "NoError", "status": "Preparing"}
            await cp.result("StatusNotification", status)
            start = {"connectorId": 1, "idTag": "TAG1", "meterStart": 0, "timestamp": TIMESTAMP}
            tx = (await cp.result("StartTransaction", start))["transactionId"]
            value = {"value": "10", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
            reading = {
                "connectorId": 1,
                "transactionId": tx,
                "meterValue": [{"timestamp": TIMESTAMP, "sampledValue": [value]}],
            }
            await cp.result("MeterValues", reading)
            await cp.result("MeterValues", reading)
            await cp.result("StopTransaction", {"transactionId": tx, "meterStop": 20, "timestamp": TIMESTAMP})

    run(scenario())
    kinds = {"connected", "boot", "status", "start", "meter", "stop", "disconnected"}
    wait_for_kinds(events, kinds, charger_id)
    mine = [e for e in events if e.get("charger_id") == charger_id]
    assert all(e.get("site_id") == site["id"] for e in mine if e["kind"] != "connected")
    assert [e["kind"] for e in mine].count("meter") == 1  # only the first meter value of a session
    assert next(e for e in mine if e["kind"] == "status")["connector"] == 1


def test_settings_changes_publish_a_settings_event(
    api: httpx.Client, account: Account, events: list[dict[str, Any]]
) -> None:
    """Settings take effect without a re-plug (§9): the PUT wakes the site's loop."""
    site = make_site(api, account)
    body = {
        "timezone": "Europe/Amsterdam",
        "smart_charging": "off_peak",
        "off_peak_start": "23:00",
        "off_peak_end": "07:00",
    }
    path = f"/api/v2/teams/{account.team_id}/sites/{site['id']}"
    assert api.put(f"{path}/smart-charging", json=body).status_code == 200
    wait_for_kinds(events, {"settings"})
    assert {"kind": "settings", "site_id": site["id"]} in events
    root = api.get(f"{path}/groups").json()["data"][0]
    events.clear()
    assert api.put(f"{path}/groups/{root['id']}", json={"total_amps": 40}).status_code == 200
    wait_for_kinds(events, {"settings"})


def test_a_charger_moved_while_connected_announces_its_new_site(
    server: LiveServer, api: httpx.Client, account: Account, events: list[dict[str, Any]]
) -> None:
    """§7.4: detached from one site and attached to another over the API, with its socket open and
    no Heartbeat or Boot since: its status, start and stop events wake the new site, and the
    transaction is stamped with it (DESIGN: rows carry the charger's site at the time)."""
    old, new = make_site(api, account), make_site(api, account)
    identity = unique_identity()
    sites_path = f"/api/v2/teams/{account.team_id}/sites"
    response = api.post(f"{sites_path}/{old['id']}/chargers", json={"identity": identity})
    charger_id = identity_only(api, account, response.json()["data"])["id"]
    pincode = charger_row(server, charger_id)["pincode"]

    async def move() -> None:
        detached = await asyncio.to_thread(api.delete, f"{sites_path}/{old['id']}/chargers/{charger_id}")
        assert detached.status_code == 204, detached.text
        body = {"identity": identity, "pincode": pincode}
        attached = await asyncio.to_thread(api.post, f"{sites_path}/{new['id']}/attach-charger", json=body)
        assert attached.status_code == 200, attached.text

    async def scenario() -> None:
        async with open_charger(server, identity) as ws:
            cp = Raw(ws)
            await cp.result("BootNotification", BOOT)
            await move()
            events.clear()
            status = {"connectorId": 1, "errorCode": "NoError", "status": "Preparing"}
            await cp.result("StatusNotification", status)
            start = {"connectorId": 1, "idTag": "TAG1", "meterStart": 0, "timestamp": TIMESTAMP}
            tx = (await cp.result("StartTransaction", start))["transactionId"]
            await cp.result("StopTransaction", {"transactionId": tx, "meterStop": 20, "timestamp": TIMESTAMP})

    run(scenario())
    wait_for_kinds(events, {"status", "start", "stop"}, charger_id)
    mine = [e for e in events if e.get("charger_id") == charger_id and e["kind"] in ("status", "start", "stop")]
    assert [(e["kind"], e.get("site_id")) for e in mine] == [
        ("status", new["id"]),
        ("start", new["id"]),
        ("stop", new["id"]),
    ]
    transactions = api.get(f"{sites_path}/{new['id']}/transactions").json()["data"]
    assert [t["charger_id"] for t in transactions] == [charger_id]
    assert api.get(f"{sites_path}/{old['id']}/transactions").json()["data"] == []
