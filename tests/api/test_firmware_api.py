"""Firmware updates over REST, end to end: the simulator downloads from a server the test runs, installs and
reboots; an independent charger (the `ocpp` package's ChargePoint) reports states and refuses.

OCPP 1.6 §5.19 UpdateFirmware, §4.5 FirmwareStatusNotification; docs/api.md "Firmware".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from ocpp.exceptions import NotSupportedError
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action

from tests.conftest import BACKENDS, LiveServer
from tests.ocpp.gateway_support import dedicated_server, identity_only, unique_identity
from tests.support.firmware_files import firmware_files
from tests.support.interop import SilentCharger, connected, scenario
from tests.support.simulated import until
from voltline.services.accounts import Account
from voltline.simulator import SimulatedCharger
from voltline.simulator.charger import INITIAL_FIRMWARE_VERSION

FIRMWARE = "2.0.0-sim"
SIMULATOR_OPTIONS = {"auto_sessions": False, "call_timeout": 5.0, "meter_interval": 60.0}


class UpdatingCharger(ChargePoint):  # type: ignore[misc]
    """Takes UpdateFirmware (its answer is empty) and records what it was asked."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asked: list[dict[str, Any]] = []

    @on(Action.update_firmware)
    def on_update_firmware(self, **payload: Any) -> Any:
        self.asked.append(payload)
        return call_result.UpdateFirmware()


class RefusingCharger(ChargePoint):  # type: ignore[misc]
    """Has no Firmware Management profile: answers UpdateFirmware with CALLERROR NotSupported."""

    @on(Action.update_firmware)
    def on_update_firmware(self, **payload: Any) -> Any:
        raise NotSupportedError(description="Firmware Management is not supported")


def make_charger(server: LiveServer, account: Account) -> tuple[str, str]:
    """A charger of the team on security profile 0; its identity and API path."""
    identity = unique_identity("FW")
    with server.client(account) as api:
        charger = api.post(f"/api/v2/teams/{account.team_id}/chargers", json={"identity": identity}).json()["data"]
        identity_only(api, account, charger)
    return identity, f"/api/v2/teams/{account.team_id}/chargers/{charger['uuid']}"


async def updates(api: httpx.AsyncClient, base: str) -> list[dict[str, Any]]:
    response = await api.get(f"{base}/firmware-updates")
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def states(update: dict[str, Any]) -> list[str]:
    return [entry["status"] for entry in update["history"]]


async def finished(api: httpx.AsyncClient, base: str, *, version_after: bool = False) -> dict[str, Any]:
    """The charger's latest update once it is finished (and, if asked, once its new version is known)."""
    latest: list[dict[str, Any]] = []

    async def done() -> bool:
        latest[:] = (await updates(api, base))[:1]
        ready = bool(latest) and latest[0]["finished_at"] is not None
        return ready and (not version_after or latest[0]["firmware_version_after"] is not None)

    await until(done, 20, "the firmware update to finish")
    return latest[0]


async def with_simulator(server: LiveServer, identity: str, body: Callable[[SimulatedCharger], Any]) -> Any:
    """Run the simulated charger against the live server while `body` runs (after its first boot)."""
    url_base = server.base_url.replace("http://", "ws://") + "/ocpp"
    cp = SimulatedCharger(url_base, identity, **SIMULATOR_OPTIONS)  # type: ignore[arg-type]
    stop = asyncio.Event()
    task = asyncio.create_task(cp.run(stop))
    try:
        for _ in range(400):
            if cp.connection_state == "accepted" and len(cp.outbox) == 0:
                break
            await asyncio.sleep(0.025)
        assert cp.connection_state == "accepted", cp.last_error
        return await body(cp)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def test_the_simulator_downloads_installs_and_reboots_and_the_update_is_done(
    server: LiveServer, account: Account
) -> None:
    """§5.19 end to end: Requested, the charger's states, then a boot on the new version marks it done."""
    identity, base = make_charger(server, account)

    async def body(api: httpx.AsyncClient) -> None:
        with firmware_files({"/fw.bin": f"{FIRMWARE}\nbinary".encode()}) as files:

            async def run(cp: SimulatedCharger) -> None:
                answer = await api.post(f"{base}/commands/update-firmware", json={"location": files.url("/fw.bin")})
                assert answer.status_code == 200, answer.text
                reply = answer.json()
                assert reply["message"] == "Accepted"
                assert reply["data"]["history"][0]["status"] == "Requested"
                assert reply["data"]["firmware_version_before"] == INITIAL_FIRMWARE_VERSION
                assert reply["data"]["location"] == files.url("/fw.bin")
                update = await finished(api, base, version_after=True)
                assert update["uuid"] == reply["data"]["uuid"]
                assert states(update) == ["Requested", "Downloading", "Downloaded", "Installing", "Installed"]
                assert (update["status"], update["firmware_version_after"]) == ("Installed", FIRMWARE)
                assert files.requests == ["/fw.bin"]
                assert cp.counters.boots == 2

            await with_simulator(server, identity, run)
        ocpp = (await api.get(f"{base}/ocpp")).json()["data"]
        assert (ocpp["firmware_version"], ocpp["firmware_status"]) == (FIRMWARE, "Installed")
        audit = (await api.get(f"/api/v2/teams/{account.team_id}/audit-log")).json()["data"]
        assert [(e["action"], e["outcome"]) for e in audit if e["action"] == "charger.update_firmware"] == [
            ("charger.update_firmware", "Accepted")
        ]

    scenario(server, account, body)


def test_a_download_that_fails_ends_the_update_as_download_failed(server: LiveServer, account: Account) -> None:
    """A 404 from the test's server on every try (1 + retries): DownloadFailed, no new version."""
    identity, base = make_charger(server, account)

    async def body(api: httpx.AsyncClient) -> None:
        with firmware_files({}) as files:

            async def run(cp: SimulatedCharger) -> None:
                request = {"location": files.url("/nothing.bin"), "retries": 1, "retry_interval": 0}
                answer = await api.post(f"{base}/commands/update-firmware", json=request)
                assert answer.status_code == 200, answer.text
                update = await finished(api, base)
                assert states(update) == ["Requested", "Downloading", "Downloading", "DownloadFailed"]
                assert (update["status"], update["firmware_version_after"]) == ("DownloadFailed", None)
                assert (update["retries"], update["retry_interval"]) == (1, 0)
                assert files.requests == ["/nothing.bin", "/nothing.bin"]
                assert cp.counters.boots == 1

            await with_simulator(server, identity, run)

    scenario(server, account, body)


def test_an_installation_failure_ends_the_update_as_installation_failed(server: LiveServer, account: Account) -> None:
    """An empty file cannot be installed by the simulator: InstallationFailed, the charger keeps its version."""
    identity, base = make_charger(server, account)

    async def body(api: httpx.AsyncClient) -> None:
        with firmware_files({"/empty.bin": b""}) as files:

            async def run(cp: SimulatedCharger) -> None:
                answer = await api.post(f"{base}/commands/update-firmware", json={"location": files.url("/empty.bin")})
                assert answer.status_code == 200, answer.text
                update = await finished(api, base)
                assert states(update) == ["Requested", "Downloading", "Downloaded", "Installing", "InstallationFailed"]
                assert (update["status"], update["firmware_version_after"]) == ("InstallationFailed", None)
                assert cp.counters.boots == 1

            await with_simulator(server, identity, run)
        ocpp = (await api.get(f"{base}/ocpp")).json()["data"]
        assert (ocpp["firmware_version"], ocpp["firmware_status"]) == (INITIAL_FIRMWARE_VERSION, "InstallationFailed")

    scenario(server, account, body)


def boot(version: str) -> Any:
    return call.BootNotification(charge_point_model="Interop", charge_point_vendor="ocpp-py", firmware_version=version)


def test_reports_move_the_latest_update_and_a_boot_on_a_new_version_completes_it(
    server: LiveServer, account: Account
) -> None:
    """§4.5 states in order with their times; Idle changes nothing; a boot on the version the charger had
    completes nothing, one on another version marks the update Installed with it (no Installed report needed)."""
    identity, base = make_charger(server, account)

    async def body(api: httpx.AsyncClient) -> None:
        async with connected(server, identity, UpdatingCharger) as charger:
            await charger.call(boot("6.0"))
            await charger.call(call.FirmwareStatusNotification(status="Idle"))
            request = {"location": "ftp://files.example.com/fw.bin", "retrieve_at": "2030-01-02 03:04:05"}
            answer = await api.post(f"{base}/commands/update-firmware", json=request)
            assert answer.status_code == 200, answer.text
            assert charger.asked == [{"location": request["location"], "retrieve_date": "2030-01-02T03:04:05.000000Z"}]
            for status in ("Downloading", "Idle", "Downloaded", "Installing"):
                await charger.call(call.FirmwareStatusNotification(status=status))
            await charger.call(boot("6.0"))
            (update,) = await updates(api, base)
            assert states(update) == ["Requested", "Downloading", "Downloaded", "Installing"]
            assert (update["finished_at"], update["retrieve_at"]) == (None, "2030-01-02T03:04:05.000000Z")
            await charger.call(boot("7.0"))
            (update,) = await updates(api, base)
            assert states(update) == ["Requested", "Downloading", "Downloaded", "Installing", "Installed"]
            versions = (update["firmware_version_before"], update["firmware_version_after"])
            assert (update["status"], versions) == ("Installed", ("6.0", "7.0"))
            times = [entry["at"] for entry in update["history"]]
            assert times == sorted(times) and update["finished_at"] == times[-1]
            await charger.call(call.FirmwareStatusNotification(status="Installed"))
            assert await updates(api, base) == [update]

    scenario(server, account, body)


@pytest.mark.parametrize("charger_class", [ChargePoint, RefusingCharger], ids=["NotImplemented", "NotSupported"])
def test_a_charger_that_refuses_is_409_with_its_answer_and_nothing_is_stored(
    server: LiveServer, account: Account, charger_class: type[ChargePoint]
) -> None:
    """A charger without Firmware Management answers a CALLERROR: 409 with the charger's answer, no update."""
    identity, base = make_charger(server, account)
    code = "NotSupported" if charger_class is RefusingCharger else "NotImplemented"

    async def body(api: httpx.AsyncClient) -> None:
        async with connected(server, identity, charger_class):
            answer = await api.post(f"{base}/commands/update-firmware", json={"location": "https://x.example/fw"})
        assert answer.status_code == 409, answer.text
        assert answer.json()["message"].startswith(f"The charger answered {code}")
        assert await updates(api, base) == []

    scenario(server, account, body)


def test_an_offline_charger_is_409_and_nothing_is_stored(server: LiveServer, account: Account) -> None:
    _, base = make_charger(server, account)
    with server.client(account) as api:
        answer = api.post(f"{base}/commands/update-firmware", json={"location": "https://x.example/fw"})
        assert (answer.status_code, answer.json()) == (409, {"message": "The charger is offline."})
        assert api.get(f"{base}/firmware-updates").json()["data"] == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_charger_that_never_answers_is_504_and_nothing_is_stored(
    fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory, backend: str
) -> None:
    with dedicated_server(fresh_database, tmp_path_factory, backend, ocpp_call_timeout=0.5) as server:
        account = server.account()
        identity, base = make_charger(server, account)

        async def body(api: httpx.AsyncClient) -> None:
            async with connected(server, identity, SilentCharger):
                answer = await api.post(f"{base}/commands/update-firmware", json={"location": "https://x.example/fw"})
            assert (answer.status_code, answer.json()) == (504, {"message": "The charger did not respond in time."})
            assert await updates(api, base) == []

        scenario(server, account, body)


V201 = "field needs an OCPP 2.0.1 charger; this charger speaks OCPP 1.6."


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"location": ["The location field is required."]}),
        ({"location": "file:///etc/fw.bin"}, {"location": ["The location field format is invalid."]}),
        ({"location": "firmware.bin"}, {"location": ["The location field format is invalid."]}),
        ({"location": "https://"}, {"location": ["The location field format is invalid."]}),
        (
            {"location": "https://x.example/" + "f" * 500},
            {"location": ["The location field must not be greater than 512 characters."]},
        ),
        (
            {"location": "https://x.example/fw", "retrieve_at": "2030-01-01T00:00:00Z"},
            {"retrieve_at": ["The retrieve at field must match the format Y-m-d H:i:s."]},
        ),
        (
            {"location": "https://x.example/fw", "retries": -1, "retry_interval": "often"},
            {
                "retries": ["The retries field must be at least 0."],
                "retry_interval": ["The retry interval field must be an integer."],
            },
        ),
        (
            {"location": "https://x.example/fw", "install_at": "2030-01-01 00:00:00", "signature": "c2ln"},
            {"install_at": [f"The install at {V201}"], "signature": [f"The signature {V201}"]},
        ),
        (
            {"location": "https://x.example/fw", "signing_certificate": "-----BEGIN CERTIFICATE-----"},
            {"signing_certificate": [f"The signing certificate {V201}"]},
        ),
    ],
)
def test_bad_bodies_are_422_before_anything_is_sent(
    server: LiveServer, account: Account, body: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    """Laravel 422s; the 2.0.1-only fields need an OCPP 2.0.1 charger (docs/api.md "Firmware")."""
    identity, base = make_charger(server, account)

    async def run(api: httpx.AsyncClient) -> None:
        async with connected(server, identity, UpdatingCharger) as charger:
            answer = await api.post(f"{base}/commands/update-firmware", json=body)
            assert charger.asked == []
        assert (answer.status_code, answer.json()["errors"]) == (422, errors)
        assert await updates(api, base) == []

    scenario(server, account, run)


def test_the_list_is_paginated_newest_first_and_other_teams_see_nothing(server: LiveServer, account: Account) -> None:
    """Paginated like the other v2 lists; another team's path for the charger is a 404."""
    identity, base = make_charger(server, account)

    async def body(api: httpx.AsyncClient) -> None:
        async with connected(server, identity, UpdatingCharger):
            for n in range(3):
                request = {"location": f"https://x.example/fw-{n}"}
                assert (await api.post(f"{base}/commands/update-firmware", json=request)).status_code == 200
        first = (await api.get(f"{base}/firmware-updates", params={"per_page": 2})).json()
        second = (await api.get(f"{base}/firmware-updates", params={"per_page": 2, "page": 2})).json()
        locations = [u["location"] for u in first["data"] + second["data"]]
        assert locations == [f"https://x.example/fw-{n}" for n in (2, 1, 0)]
        assert first["links"]["next"] is not None and second["links"]["next"] is None
        other = server.account("Other")
        charger_ref = base.rsplit("/", 1)[1]
        headers = {"Authorization": f"Bearer {other.token}"}
        path = f"/api/v2/teams/{other.team_id}/chargers/{charger_ref}/firmware-updates"
        assert (await api.get(path, headers=headers)).status_code == 404

    scenario(server, account, body)
