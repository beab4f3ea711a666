"""The simulated charger's firmware updates: OCPP 1.6 §5.19 UpdateFirmware, §4.5 FirmwareStatusNotification.

The file's first line is the new version (simulator/firmware.py); an empty file fails installation.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, timedelta

import pytest

from tests.clocked import SteppedClock
from tests.simulator import CentralSystem, run, station
from tests.support.firmware_files import firmware_files
from voltline.simulator import SimulatedCharger
from voltline.simulator.charger import INITIAL_FIRMWARE_VERSION
from voltline.simulator.firmware import version_of


def firmware_states(csms: CentralSystem, identity: str) -> list[str]:
    return [p["status"] for p in csms.calls("FirmwareStatusNotification", identity)]


def boot_versions(csms: CentralSystem, identity: str) -> list[str]:
    return [p["firmwareVersion"] for p in csms.calls("BootNotification", identity)]


def in_seconds(cp: SimulatedCharger, seconds: float) -> str:
    return (cp.now() + timedelta(seconds=seconds)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("content", "version"),
    [
        (b"2.0.0-sim\nbinary...", "2.0.0-sim"),
        (b"  3.1  \r\n", "3.1"),
        (b"", None),
        (b"\n2.0", None),
        (b"\xff\xfe", None),
        (b"v" * 51, None),
    ],
)
def test_the_new_version_is_the_files_first_line(content: bytes, version: str | None) -> None:
    """A version fits BootNotification's firmwareVersion (CiString50); otherwise installation fails."""
    assert version_of(content) == version


def test_an_update_downloads_installs_and_boots_on_the_new_version() -> None:
    """§5.19: Downloading, Downloaded, Installing, Installed, then a reboot on the file's version."""

    async def scenario() -> None:
        with firmware_files({"/fw.bin": b"2.0.0-sim\n\x00\x01"}) as files:
            async with station("CP-FW1") as (csms, cp):
                payload = {"location": files.url("/fw.bin"), "retrieveDate": in_seconds(cp, 0)}
                assert await csms.result(cp.identity, "UpdateFirmware", payload) == {}
                await csms.until(lambda: len(boot_versions(csms, cp.identity)) == 2)
                assert firmware_states(csms, cp.identity) == ["Downloading", "Downloaded", "Installing", "Installed"]
                assert boot_versions(csms, cp.identity) == [INITIAL_FIRMWARE_VERSION, "2.0.0-sim"]
                assert cp.firmware_version == "2.0.0-sim"
                assert files.requests == ["/fw.bin"]
                sequence = csms.sequence(cp.identity)
                installed = max(i for i, name in enumerate(sequence) if name == "cp:FirmwareStatusNotification")
                assert "cp:BootNotification" in sequence[installed + 1 :]

    run(scenario)


def test_a_download_that_fails_is_retried_then_reported_as_download_failed() -> None:
    """§5.19 retries: 1 + retries attempts, retryInterval apart; then DownloadFailed and no reboot."""

    async def scenario() -> None:
        with firmware_files({}) as files:
            async with station("CP-FW2") as (csms, cp):
                payload = {
                    "location": files.url("/missing.bin"),
                    "retrieveDate": in_seconds(cp, 0),
                    "retries": 2,
                    "retryInterval": 0,
                }
                assert await csms.result(cp.identity, "UpdateFirmware", payload) == {}
                await csms.until(lambda: "DownloadFailed" in firmware_states(csms, cp.identity))
                states = firmware_states(csms, cp.identity)
                assert states == ["Downloading", "Downloading", "Downloading", "DownloadFailed"]
                assert files.requests == ["/missing.bin"] * 3
                assert boot_versions(csms, cp.identity) == [INITIAL_FIRMWARE_VERSION]

    run(scenario)


def test_an_empty_file_fails_installation_and_the_version_stays() -> None:
    """§4.5 InstallationFailed: the simulator's documented way to fail an installation."""

    async def scenario() -> None:
        with firmware_files({"/empty.bin": b""}) as files:
            async with station("CP-FW3") as (csms, cp):
                payload = {"location": files.url("/empty.bin"), "retrieveDate": in_seconds(cp, 0)}
                assert await csms.result(cp.identity, "UpdateFirmware", payload) == {}
                await csms.until(lambda: "InstallationFailed" in firmware_states(csms, cp.identity))
                assert firmware_states(csms, cp.identity) == [
                    "Downloading",
                    "Downloaded",
                    "Installing",
                    "InstallationFailed",
                ]
                assert cp.firmware_version == INITIAL_FIRMWARE_VERSION
                assert boot_versions(csms, cp.identity) == [INITIAL_FIRMWARE_VERSION]

    run(scenario)


def test_the_download_waits_for_the_retrieve_date_on_the_chargers_clock() -> None:
    """§5.19 retrieveDate: nothing is fetched before it; the charger's clock (moved by the test) decides."""
    clock = SteppedClock()

    async def scenario() -> None:
        with firmware_files({"/later.bin": b"9.9\n"}) as files:
            async with station("CP-FW4", clock=clock) as (csms, cp):
                payload = {"location": files.url("/later.bin"), "retrieveDate": in_seconds(cp, 3600)}
                assert await csms.result(cp.identity, "UpdateFirmware", payload) == {}
                await asyncio.sleep(0.6)  # real time passes; the charger's clock is an hour short
                assert files.requests == []
                assert firmware_states(csms, cp.identity) == []
                await clock.advance(3600)
                await csms.until(lambda: "Installed" in firmware_states(csms, cp.identity))
                assert files.requests == ["/later.bin"]

    run(scenario)


def test_a_bad_update_firmware_payload_is_a_call_error() -> None:
    """OCPP-J 1.6 §4.2.3: a payload that breaks the request schema gets a CALLERROR."""

    async def scenario() -> None:
        async with station("CP-FW5") as (csms, cp):
            missing = await csms.call(cp.identity, "UpdateFirmware", {"location": "http://x/"}, validate=False)
            wrong = await csms.call(
                cp.identity,
                "UpdateFirmware",
                {"location": "http://x/", "retrieveDate": "yesterday"},
                validate=False,
            )
            assert (missing, wrong) == (
                ("error", "OccurenceConstraintViolation"),
                ("error", "TypeConstraintViolation"),
            )
            csms.violations.clear()

    run(scenario)
