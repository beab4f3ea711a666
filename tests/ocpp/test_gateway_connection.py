"""Connecting chargers: refusals at upgrade, boot and status in the API, offline and back, replacement."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy import update
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import LiveServer, server_settings
from tests.ocpp.gateway_support import (
    BOOT,
    Raw,
    basic_auth,
    charger_row,
    connector_rows,
    dedicated_server,
    get_charger,
    log_rows,
    open_charger,
    run,
    smart_events,
    team_charger,
    unique_identity,
    wait_for,
)
from voltline.domain.credentials import PINCODE_ALPHABET, hash_ocpp_password
from voltline.services.accounts import Account
from voltline.store.schema import chargers


def refusal(server: LiveServer, identity: str, **options: object) -> int:
    """The HTTP status the upgrade was refused with."""

    async def scenario() -> int:
        with pytest.raises(InvalidStatus) as refused:
            async with open_charger(server, identity, **options):
                pass
        return int(refused.value.response.status_code)

    return int(run(scenario()))


def set_password(server: LiveServer, identity: str, password: str) -> None:
    """Give a charger an OCPP password (stored as HMAC with the server secret, as the CLI does)."""

    async def store() -> None:
        async with server.runtime.db.write() as conn:
            digest = hash_ocpp_password(server.runtime.secret_key, password)
            await conn.execute(update(chargers).where(chargers.c.identity == identity).values(password_hash=digest))

    server.run(store)


@pytest.fixture(scope="module")
def quick_server(
    server: LiveServer, fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server of its own: 1 s heartbeat interval, auto-registration on, every frame logged."""
    settings = {"ocpp_heartbeat_interval": 1, "ocpp_auto_register": True, "ocpp_log": "all"}
    with dedicated_server(fresh_database, tmp_path_factory, server.backend, **settings) as live:
        yield live


# ---------------------------------------------------------------- upgrade


def test_an_upgrade_without_an_ocpp_subprotocol_is_refused_with_400(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """DESIGN: refuse the upgrade when no subprotocol matches."""
    identity = team_charger(api, account)["identity"]
    assert refusal(server, identity, subprotocols=()) == 400
    assert refusal(server, identity, subprotocols=("ocpp1.5", "wamp")) == 400


def test_an_unknown_identity_is_refused_with_401(server: LiveServer) -> None:
    """DESIGN: unknown identities are refused at upgrade, with the 401 of a wrong password (Charger security)."""
    assert refusal(server, unique_identity("NOBODY")) == 401
    assert refusal(server, "X" * 46) == 401


def test_a_charger_with_a_password_needs_it_at_upgrade(server: LiveServer, api: httpx.Client, account: Account) -> None:
    """OCPP security profile 1: HTTP Basic with the charger's password; 401 otherwise."""
    identity = team_charger(api, account, security_profile=1)["identity"]
    set_password(server, identity, "correct-horse-battery")
    assert refusal(server, identity) == 401
    assert refusal(server, identity, additional_headers=basic_auth(identity, "wrong-password-123")) == 401
    assert refusal(server, identity, additional_headers={"Authorization": "Basic !!notbase64"}) == 401

    async def scenario() -> dict[str, object]:
        headers = basic_auth(identity, "correct-horse-battery")
        async with open_charger(server, identity, additional_headers=headers) as ws:
            assert ws.subprotocol == "ocpp1.6"
            return await Raw(ws).result("BootNotification", BOOT)

    assert run(scenario())["status"] == "Accepted"


def test_auto_registration_makes_an_unattached_charger_with_a_pincode(quick_server: LiveServer) -> None:
    """DESIGN: VOLTLINE_OCPP_AUTO_REGISTER=true creates the charger, with a generated pincode for attach."""
    identity = unique_identity("AUTO")

    async def scenario() -> None:
        async with open_charger(quick_server, identity) as ws:
            await Raw(ws).result("BootNotification", BOOT)

    run(scenario())
    row = charger_row(quick_server, identity)
    assert (row["team_id"], row["site_id"], row["vendor"]) == (None, None, "Alfen BV")
    assert len(row["pincode"]) == 8 and set(row["pincode"]) <= set(PINCODE_ALPHABET)


# ---------------------------------------------------------------- boot, status, connection status


def test_boot_and_status_notifications_show_in_the_charger_api(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """DESIGN: connector 0 gives the charger's status/error/error_info; connectors >= 1 are made on first sight."""
    charger = team_charger(api, account)
    assert charger["connection_status"] == "never_seen"
    identity = charger["identity"]
    boot = {**BOOT, "chargePointSerialNumber": "ACE0123456", "firmwareVersion": "6.1.0-3810"}

    async def scenario() -> None:
        async with open_charger(server, identity) as ws:
            peer = Raw(ws)
            answer = await peer.result("BootNotification", boot)
            assert list(answer) == ["status", "currentTime", "interval"]
            assert (answer["status"], answer["interval"]) == ("Accepted", 300)
            assert answer["currentTime"].endswith("Z")
            status = {"connectorId": 0, "errorCode": "GroundFailure", "status": "Faulted", "info": "RCD tripped"}
            assert await peer.result("StatusNotification", status) == {}
            for number, state in ((1, "Available"), (2, "Preparing"), (1, "Charging")):
                sent = {"connectorId": number, "errorCode": "NoError", "status": state}
                assert await peer.result("StatusNotification", sent) == {}
            live = get_charger(api, account, charger["id"])
            assert live["connection_status"] == "online"
            assert (live["status"], live["error"], live["error_info"]) == ("Faulted", "GroundFailure", "RCD tripped")
            numbers = [(c["connector_id"], c["status"], c["error"]) for c in live["connectors"]]
            assert numbers == [(1, "Charging", "NoError"), (2, "Preparing", "NoError")]

    run(scenario())
    row = charger_row(server, identity)
    stored = (row["vendor"], row["model"], row["serial_number"], row["firmware_version"], row["ocpp_version"])
    assert stored == ("Alfen BV", "NG910-60023", "ACE0123456", "6.1.0-3810", "1.6")
    assert row["heartbeat_interval"] == 300
    assert '"chargePointSerialNumber":"ACE0123456"' in row["boot_payload"]
    wait_for(lambda: get_charger(api, account, charger["id"])["connection_status"] == "offline")
    assert len(connector_rows(server, charger["id"])) == 2


def test_a_second_socket_replaces_the_first(server: LiveServer, api: httpx.Client, account: Account) -> None:
    """DESIGN: a new socket for a connected identity replaces the old one; the charger stays online."""
    charger = team_charger(api, account)

    async def scenario() -> None:
        async with open_charger(server, charger["identity"]) as first:
            await Raw(first).result("Heartbeat", {})
            async with open_charger(server, charger["identity"]) as second:
                with pytest.raises(ConnectionClosed):
                    async with asyncio.timeout(5):
                        await first.recv()
                assert first.close_code == 1000
                assert await Raw(second).result("Heartbeat", {}) != {}
                assert get_charger(api, account, charger["id"])["connection_status"] == "online"

    run(scenario())
    wait_for(lambda: get_charger(api, account, charger["id"])["connection_status"] == "offline")


def test_a_frame_over_the_size_limit_closes_with_1009(server: LiveServer, api: httpx.Client, account: Account) -> None:
    """DESIGN: ws_max_size 256 KiB; a larger frame closes with 1009."""
    identity = team_charger(api, account)["identity"]

    async def scenario() -> int | None:
        async with open_charger(server, identity) as ws:
            await ws.send('[2,"big","DataTransfer",{"vendorId":"x","data":"' + "a" * 300_000 + '"}]')
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(5):
                    await ws.recv()
            return ws.close_code

    assert run(scenario()) == 1009


def test_silence_for_two_heartbeat_intervals_is_offline_and_a_frame_brings_it_back(
    quick_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    """DESIGN: offline after 2 x heartbeat interval without a frame; one log line on drop and one on return."""
    identity = unique_identity("QUIET")
    caplog.set_level(logging.INFO, logger="voltline.ocpp")

    def status() -> str:
        return str(charger_row(quick_server, identity)["connection_status"])

    async def scenario() -> None:
        async with open_charger(quick_server, identity) as ws:
            peer = Raw(ws)
            answer = await peer.result("BootNotification", BOOT)
            assert answer["interval"] == 1
            assert status() == "online"
            await asyncio.to_thread(wait_for, lambda: status() == "offline", 6)
            await peer.result("Heartbeat", {})
            assert status() == "online"

    run(scenario())
    prefix = f"{identity}: "

    def logged() -> list[str]:
        return [r.getMessage().removeprefix(prefix) for r in caplog.records if r.getMessage().startswith(prefix)]

    # The line follows the commit of the status: wait for both, not only the row.
    wait_for(lambda: status() == "offline" and logged()[-1:] == ["offline (the socket closed)"])
    lines = logged()
    assert [line for line in lines if not line.startswith("auto-registered")] == [
        "online (was never_seen)",
        "offline (no frame for 2 s)",
        "back online",
        "offline (the socket closed)",
    ]


def test_a_silent_charger_whose_socket_then_closes_is_announced_disconnected_once(quick_server: LiveServer) -> None:
    """§7.4: the liveness check announces `disconnected` when the charger falls silent; the socket
    closing later, with no frame between, does not announce it again (one control run, not two)."""
    identity = unique_identity("QUIET")
    registry = quick_server.app.app.state.gateway.registry

    def kinds() -> list[str]:
        charger_id = charger_row(quick_server, identity)["id"]
        return [e["kind"] for e in events if e.get("charger_id") == charger_id]

    async def scenario() -> None:
        async with open_charger(quick_server, identity) as ws:
            await Raw(ws).result("BootNotification", BOOT)
            await asyncio.to_thread(wait_for, lambda: "disconnected" in kinds(), 6)

    with smart_events(quick_server) as events:
        run(scenario())
        # The close is handled after the client leaves: the session leaves the registry, then its
        # offline row commits, then a second event would be published. Give it a second to appear.
        wait_for(lambda: registry.get(identity) is None)
        with contextlib.suppress(AssertionError):
            wait_for(lambda: kinds().count("disconnected") > 1, 1)
    assert kinds()[0] == "connected" and kinds().count("disconnected") == 1, kinds()


def test_with_the_log_set_to_all_heartbeats_and_meter_values_are_kept_too(quick_server: LiveServer) -> None:
    """DESIGN: VOLTLINE_OCPP_LOG=all keeps everything."""
    identity = unique_identity("LOGALL")
    meter = {"connectorId": 0, "meterValue": [{"timestamp": "2025-03-31T12:00:00Z", "sampledValue": [{"value": "1"}]}]}

    async def scenario() -> None:
        async with open_charger(quick_server, identity) as ws:
            peer = Raw(ws)
            await peer.result("Heartbeat", {})
            await peer.result("MeterValues", meter)

    run(scenario())
    logged = log_rows(quick_server, charger_row(quick_server, identity)["id"])
    assert [(r["direction"], r["action"]) for r in logged] == [
        ("in", "Heartbeat"),
        ("out", "Heartbeat"),
        ("in", "MeterValues"),
        ("out", "MeterValues"),
    ]
    assert json.loads(logged[2]["payload"]) == meter


def test_a_restart_marks_chargers_left_online_offline(
    fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A crash leaves no socket open: the next start of the only gateway must not show ghosts as online."""
    url = fresh_database("sqlite")
    data_dir = str(tmp_path_factory.mktemp("data"))
    first = LiveServer(server_settings(url, data_dir), "sqlite")
    first.start()
    account = first.account()
    with first.client(account) as api:
        charger = team_charger(api, account)

    async def force_online() -> None:
        async with first.runtime.db.write() as conn:
            await conn.execute(
                update(chargers).where(chargers.c.id == charger["id"]).values(connection_status="online")
            )

    first.run(force_online)
    first.stop()
    second = LiveServer(server_settings(url, data_dir), "sqlite")
    second.start()
    try:
        with second.client(account) as api:
            assert get_charger(api, account, charger["id"])["connection_status"] == "offline"
    finally:
        second.stop()
