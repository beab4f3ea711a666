"""A site's power management (spec/volttime-api.md): the group tree, draw, and each connector's limit and why.

The live scenarios run on the smart-charging e2e server (the `smart` fixture, tests/support/smart_e2e.py: a stepped
clock, simulated chargers over real sockets, cars that take 32 A) and read the endpoint over HTTP
while the controller works. The plain test needs no chargers: before any control run the tree
comes from the database with reason `not_computed` (docs/api.md decision).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer, server_settings
from tests.support.smart_e2e import (
    SETTLE,
    Site,
    SmartCharger,
    connectors_of,
    hhmm,
    limits,
    make_charger,
    offered_are,
    power_management,
    running,
    three_more_arrive,
)
from voltline.api.power_management import NOT_COMPUTED
from voltline.domain.ids import ChargerId, GroupId, SiteId
from voltline.services.accounts import Account
from voltline.store import chargers as charger_store
from voltline.store import groups as group_store


async def until_shown(site: Site, holds: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    """Poll the endpoint until the condition holds on its data; return that data."""
    data: dict[str, Any] = {}
    try:
        async with asyncio.timeout(SETTLE):
            while not holds(data := await asyncio.to_thread(power_management, site.api, site.path)):
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"{what}: {data}") from None
    return data


# ---------------------------------------------------------------------- live, on the clocked server


def test_the_tree_shows_each_connectors_limit_and_why_while_the_controller_works(smart: LiveServer) -> None:
    """R-82 share ("10.6" each for three on 32 A), R-81 admission ("0.0" for a sixth), R-56 gate_closed."""
    site = Site(smart, smart.account(), 32)
    chargers = [make_charger(smart, site, f"PM{n}", None) for n in range(6)]

    async def scenario() -> None:
        async with running(chargers):
            await three_share(site, chargers)
            await sixth_waits(site, chargers)
            await gate_closes(site, chargers)

    try:
        asyncio.run(scenario())
    finally:
        site.api.close()


async def three_share(site: Site, chargers: list[SmartCharger]) -> None:
    """Three cars on a 32 A group: each limit "10.6" (share), the root allocates "31.8" and draws it."""
    for cp in chargers[:3]:
        cp.begin()
    await offered_are(chargers[:3], [10.6] * 3, "R-82: 32 A over three")
    data = await until_shown(
        site, lambda d: bool(d) and limits(d, chargers[:3]) == [("10.6", "share")] * 3, "three shares shown"
    )
    root = data["groups"][0]
    assert (root["group_id"], root["total_amps"], root["capacity_amps"]) == (None, 32, "32.0")
    assert root["allocated_amps"] == "31.8"
    assert data["gate"] == {"open": True, "reason": "disabled", "next_change": None}
    assert data["smart_charging"] == "disabled" and data["computed_at"].endswith("Z")
    shown = connectors_of(data)
    first = shown[chargers[0].identity]
    assert first["online"] is True and first["transaction_id"] is not None and first["max_amps"] == "32.0"
    assert first["smart_charging_state"] == "limited" and first["connector_id"] == 1
    assert [shown[cp.identity]["reason"] for cp in chargers[3:]] == ["idle"] * 3
    assert [shown[cp.identity]["limit_amps"] for cp in chargers[3:]] == [None] * 3
    drawn = await until_shown(site, lambda d: Decimal(d["groups"][0]["draw"]["l1"]) > 30, "R-104: the draw arrives")
    assert Decimal(drawn["groups"][0]["draw"]["l1"]) <= Decimal("31.8")


async def sixth_waits(site: Site, chargers: list[SmartCharger]) -> None:
    """R-81: 6 x 6 A > 32 A, so the sixth to arrive waits at "0.0" with reason admission."""
    await three_more_arrive(chargers)
    data = await until_shown(
        site,
        lambda d: limits(d, chargers) == [("6.4", "share")] * 5 + [("0.0", "admission")],
        "five shares and one admission shown",
    )
    assert data["groups"][0]["allocated_amps"] == "32.0"
    assert connectors_of(data)[chargers[5].identity]["smart_charging_state"] == "paused"


async def gate_closes(site: Site, chargers: list[SmartCharger]) -> None:
    """R-56: outside the off-peak window every session is paused with reason gate_closed."""
    now = site.server.clock.now()  # type: ignore[attr-defined]
    window = {"off_peak_start": hhmm(now + timedelta(minutes=30)), "off_peak_end": hhmm(now + timedelta(minutes=90))}
    await site.put("/smart-charging", {"timezone": "UTC", "smart_charging": "off_peak", **window})
    data = await until_shown(
        site, lambda d: limits(d, chargers) == [("0.0", "gate_closed")] * 6, "every connector gated"
    )
    assert data["smart_charging"] == "off_peak"
    assert data["gate"]["open"] is False and data["gate"]["reason"] == "off_peak_closed"
    assert data["gate"]["next_change"].endswith("Z")
    assert data["groups"][0]["allocated_amps"] == "0.0"
    await site.put("/smart-charging", {"timezone": "UTC", "smart_charging": "disabled"})


# ---------------------------------------------------------------------- before any control run


def test_before_any_control_run_the_tree_comes_from_the_database(server: LiveServer, account: Account) -> None:
    """docs/api.md decision: no snapshot yet -> the tree with limits null and reason not_computed."""
    with server.client(account) as api:
        base = f"/api/v2/teams/{account.team_id}/sites"
        site, root, charger, child = site_with_a_connector(server, api, base, "PMQ")
        path = f"{base}/{site['id']}"
        data = power_management(api, path)
        assert api.get(f"{base}/999999999/power-management").status_code == 404
    assert data["site"] == {"id": site["id"], "uuid": site["uuid"]}
    assert (data["gate"], data["computed_at"], data["smart_charging"]) == (None, None, "disabled")
    [top] = data["groups"]
    assert (top["id"], top["uuid"], top["capacity_amps"], top["allocated_amps"]) == (
        root["id"],
        root["uuid"],
        "16.0",
        None,
    )
    assert top["draw"] == {"l1": "0.0", "l2": "0.0", "l3": "0.0"} and top["connectors"] == []
    [sub] = top["groups"]
    assert (sub["id"], sub["name"], sub["group_id"], sub["parent_group_id"]) == (child, "Bay", root["id"], root["id"])
    assert (sub["total_amps"], sub["capacity_amps"], sub["meter_id"], sub["groups"]) == (25, "20.0", None, [])
    [connector] = sub["connectors"]
    assert connector["charger"] == {"id": charger["id"], "uuid": charger["uuid"], "identity": charger["identity"]}
    assert (connector["limit_amps"], connector["reason"], connector["max_amps"]) == (None, "not_computed", "16.0")
    assert (connector["connector_id"], connector["status"], connector["online"]) == (1, "Available", False)
    assert (connector["transaction_id"], connector["smart_charging_state"]) == (None, "none")


def site_with_a_connector(
    server: LiveServer, api: httpx.Client, base: str, prefix: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], int]:
    """A new site (its root group 16 A) with a charger whose 16 A connector sits in a 25 A sub-group; and that group."""
    body = {"name": "Quiet", "street": "Main", "house_number": 1, "postal_code": "1234AB", "city": "Utrecht"}
    site = api.post(base, json={**body, "country": "NL"}).json()["data"]
    path = f"{base}/{site['id']}"
    root = api.get(f"{path}/groups").json()["data"][0]
    charger = api.post(f"{path}/chargers", json={"identity": f"{prefix}-{site['id']}"}).json()["data"]
    child = server.run(lambda: add_group_and_connector(server, site["id"], root["id"], charger["id"]))
    return site, root, charger, child


async def add_group_and_connector(server: LiveServer, site_id: int, root_id: int, charger_id: int) -> int:
    """A 25 A sub-group with peak shaving at 20 A holding the charger's one 16 A connector (no control event)."""
    values = {"group_id": root_id, "name": "Bay", "total_amps": 25, "method": "boost"}
    values |= {"peak_shaving_enabled": True, "peak_shaving_threshold": 20}
    async with server.runtime.db.write() as conn:
        await group_store.update_group(conn, SiteId(site_id), GroupId(root_id), {"total_amps": 16})
        group = await group_store.create_group(conn, SiteId(site_id), values)
        await charger_store.upsert_connector(
            conn, ChargerId(charger_id), 1, {"status": "Available", "max_amperage": 16, "group_id": group["id"]}
        )
    return int(group["id"])


# ---------------------------------------------------------------------- any process serves it


def test_the_picture_of_the_last_run_is_served_by_another_process_after_the_controller_is_gone(
    server: LiveServer, fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """DESIGN "Cluster": the controller stores its picture after each run, so an api process without
    a controller (smart control off) serves the same power management from the database."""
    url, data_dir = fresh_database(server.backend), str(tmp_path_factory.mktemp("data"))
    worker = LiveServer(server_settings(url, data_dir, smart_debounce=0.05), server.backend)
    worker.start()
    try:
        account = worker.account()
        with worker.client(account) as api:
            base = f"/api/v2/teams/{account.team_id}/sites"
            site, _, charger, _ = site_with_a_connector(worker, api, base, "PMS")
            path = f"{base}/{site['id']}"
            assert api.put(f"{path}/smart-charging", json={"timezone": "UTC", "smart_charging": "disabled"}).is_success
            poll(lambda: power_management(api, path), lambda d: computed_for(d, charger["identity"]))
            computed = quiet(lambda: power_management(api, path))
    finally:
        worker.stop()
    assert computed["computed_at"] is not None and computed["groups"][0]["allocated_amps"] is not None
    other = LiveServer(server_settings(url, data_dir, smart_control=False), server.backend)
    other.start()
    try:
        with other.client(account) as api:
            assert power_management(api, path) == computed
    finally:
        other.stop()


def computed_for(data: dict[str, Any], identity: str) -> bool:
    """True once the controller's picture covers the charger's connector."""
    return connectors_of(data).get(identity, {}).get("reason", NOT_COMPUTED) != NOT_COMPUTED


def quiet(read: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Read until two reads half a second apart agree (no control run in between); return that."""
    before: dict[str, Any] = {}
    while (after := read()) != before:
        before = after
        time.sleep(0.5)
    return after


def poll(read: Callable[[], dict[str, Any]], holds: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Read until the condition holds (at most SETTLE seconds); return what was read."""
    deadline = time.monotonic() + SETTLE
    while not holds(data := read()):
        assert time.monotonic() < deadline, data
        time.sleep(0.05)
    return data
