"""`voltline simulate`: a fleet of chargers, the report, argument errors, and registration through the API."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
import uuid
from collections.abc import Iterator

import httpx
import pytest
from click.testing import CliRunner, Result

from tests.conftest import LiveServer
from tests.simulator import CentralSystem, run
from voltline.services.accounts import Account
from voltline.simulator.cli import simulate
from voltline.simulator.fleet import Fleet, FleetOptions, Summary

FAST = ["--meter-interval", "0.1", "--session-minutes", "0.01", "--idle-seconds", "0.1"]
SITE = {
    "name": "Depot",
    "street": "Main",
    "house_number": 1,
    "postal_code": "1234AB",
    "city": "Utrecht",
    "country": "NL",
}


@contextlib.contextmanager
def central_system_in_a_thread() -> Iterator[CentralSystem]:
    """The test central system on its own event loop, for the synchronous CLI runner."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    csms = CentralSystem()
    asyncio.run_coroutine_threadsafe(csms.__aenter__(), loop).result(5)
    try:
        yield csms
    finally:
        asyncio.run_coroutine_threadsafe(csms.__aexit__(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def invoke(*args: str) -> Result:
    return CliRunner().invoke(simulate, list(args))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_a_fleet_runs_every_charger_and_stops_every_transaction_at_the_end() -> None:
    async def scenario() -> None:
        async with CentralSystem() as csms:
            options = FleetOptions(
                url=csms.url, chargers=3, prefix="FLT-", meter_interval=0.1, session_seconds=0.4, idle_seconds=0.1
            )
            fleet = Fleet(options)
            ticks: list[Summary] = []
            summary = await fleet.run(1.5, ticks.append)
            assert sorted(csms.sockets) == ["FLT-0001", "FLT-0002", "FLT-0003"]
            assert (summary.chargers, summary.booted, summary.connected, summary.errors) == (3, 3, 0, 0)
            assert summary.started >= 3 and summary.stopped == summary.started
            assert len(csms.calls("StartTransaction")) == len(csms.calls("StopTransaction")) == summary.started
            assert summary.meter_values == len(csms.calls("MeterValues")) > 0
            assert summary.energy_wh >= 0
            assert ticks and ticks[0].connected == 3 and ticks[0].rate > 0
            assert csms.violations == []

    run(scenario)


def test_simulate_runs_chargers_and_prints_the_report() -> None:
    with central_system_in_a_thread() as csms:
        result = invoke("--url", csms.url, "--chargers", "2", "--prefix", "CLI-", "--duration", "1", *FAST)
    assert result.exit_code == 0, result.output
    assert "simulation report" in result.output
    assert "CLI-0001" in result.output and "CLI-0002" in result.output
    assert sorted(csms.sockets) == ["CLI-0001", "CLI-0002"]
    assert csms.violations == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--chargers", "0"], "Invalid value for '--chargers': 0 is not in the range 1<=x<=100000."),
        (["--url", "http://127.0.0.1/ocpp"], "Invalid value for --url: must start with ws:// or wss://"),
        (["--duration", "0"], "Invalid value for '--duration': 0.0 is not in the range x>0."),
        (["--phases", "2"], "Invalid value for '--phases': '2' is not one of '1', '3'."),
        (["--prefix", "x" * 42], "Invalid value for --prefix: identities must be at most 45 characters, without '/'"),
        (["--api-url", "http://127.0.0.1:8000"], "--api-url needs --token and --site"),
        (["--site", "1"], "--site and --team need --api-url"),
        (["--meter-interval", "fast"], "Invalid value for '--meter-interval': 'fast' is not a valid float range."),
    ],
)
def test_bad_arguments_give_a_one_line_error_and_exit_2(args: list[str], message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == f"Error: {message}"


def test_simulate_fails_when_no_charger_can_boot() -> None:
    result = invoke("--url", f"ws://127.0.0.1:{closed_port()}/ocpp", "--duration", "0.3")
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith("Error: no charger could boot at ws://127.0.0.1:")


def test_simulate_registers_the_identities_on_a_site_first(
    server: LiveServer, account: Account, api: httpx.Client
) -> None:
    """A 422 "The identity has already been taken." counts as registered; --team defaults to the first team."""
    site = api.post(f"/api/v2/teams/{account.team_id}/sites", json=SITE).json()["data"]
    prefix = f"R{uuid.uuid4().hex[:6]}-"
    chargers = f"/api/v2/teams/{account.team_id}/sites/{site['id']}/chargers"
    assert api.post(chargers, json={"identity": f"{prefix}0002"}).status_code == 201
    with central_system_in_a_thread() as csms:
        result = invoke(
            "--url", csms.url, "--chargers", "3", "--prefix", prefix, "--duration", "0.5", *FAST,
            "--api-url", server.base_url, "--token", account.token, "--site", str(site["id"]),
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"registered 2 new and 1 existing chargers on team {account.team_id}" in result.output
    listed = api.get(chargers).json()["data"]
    assert sorted(c["identity"] for c in listed) == [f"{prefix}0001", f"{prefix}0002", f"{prefix}0003"]
    for charger in listed:  # DESIGN: Charger security: each got a password through PUT .../ocpp
        ocpp = api.get(f"/api/v2/teams/{account.team_id}/chargers/{charger['uuid']}/ocpp").json()["data"]
        assert (ocpp["security_profile"], ocpp["has_password"]) == (1, True)


def test_simulate_with_the_api_boots_its_chargers_on_a_real_server_with_their_passwords(
    server: LiveServer, account: Account, api: httpx.Client
) -> None:
    """The README's steps: register through the API, get a password each, connect with HTTP Basic."""
    site = api.post(f"/api/v2/teams/{account.team_id}/sites", json=SITE).json()["data"]
    prefix = f"P{uuid.uuid4().hex[:6]}-"
    url = server.base_url.replace("http://", "ws://") + "/ocpp"
    api_options = ["--api-url", server.base_url, "--token", account.token, "--site", str(site["id"])]
    for run_options in ([], ["--password", "a-password-for-every-charger"]):
        result = invoke("--url", url, "--chargers", "2", "--prefix", prefix, "--duration", "1", *FAST, *api_options,
                        *run_options)  # fmt: skip
        assert result.exit_code == 0, result.output
        assert re.search(r"│ booted +│ 2 +│", result.output), result.output
        assert re.search(r"│ errors +│ 0 +│", result.output), result.output
    listed = api.get(f"/api/v2/teams/{account.team_id}/sites/{site['id']}/chargers").json()["data"]
    assert sorted(c["identity"] for c in listed) == [f"{prefix}0001", f"{prefix}0002"]
    assert all(c["connection_status"] != "never_seen" for c in listed)


def test_registration_errors_are_reported_in_one_line(server: LiveServer, account: Account) -> None:
    base = ["--url", "ws://127.0.0.1:1/ocpp", "--duration", "0.1", "--api-url", server.base_url, "--site", "1"]
    wrong_token = invoke(*base, "--token", "not-a-token")
    assert wrong_token.exit_code == 1
    expected = "Error: registration failed: GET /api/v2/teams answered 401: Unauthenticated."
    assert wrong_token.output.strip().splitlines()[-1] == expected
    unknown_site = invoke(*base[:-1], "999999999", "--token", account.token, "--team", str(account.team_id))
    assert unknown_site.exit_code == 1
    assert unknown_site.output.strip().splitlines()[-1].endswith("answered 404: Not found.")
    unreachable = invoke(*base[:5], f"http://127.0.0.1:{closed_port()}", "--site", "1", "--token", "t")
    assert unreachable.exit_code == 1
    assert "registration failed: cannot reach http://127.0.0.1:" in unreachable.output
