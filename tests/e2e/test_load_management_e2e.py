"""A site's `load_management` flag and the boot gate end to end: a stepped clock, chargers over real sockets.

DESIGN "Load management": a new site is not balanced — every connector charges at its rating,
no failsafe TxDefaultProfile is installed, and only the gates (off-peak, price) pause it; on,
the groups are balanced per spec/smart-charging.md §7 as before. Nothing is sent to a charger
before its BootNotification is Accepted.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import Any

import pytest

from tests.clocked import ClockedServer
from tests.ocpp.gateway_support import BOOT, Raw, open_charger
from tests.support.smart_e2e import (
    SETTLE,
    SMART_SETTINGS,
    Site,
    SmartCharger,
    advance,
    hhmm,
    make_charger,
    offered_are,
    running,
    until,
)

RATED = [32.0] * 6


def picture(site: Site) -> dict[str, Any]:
    """The site's power management (GET .../power-management)."""
    response = site.api.get(f"{site.path}/power-management")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def connectors_shown(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The root group's connectors by charger identity."""
    return {c["charger"]["identity"]: c for c in data["groups"][0]["connectors"]}


async def shown(site: Site, holds: Any, what: str) -> dict[str, Any]:
    """Poll the picture until `holds(data)`; the data."""
    data: dict[str, Any] = {}

    def check() -> bool:
        nonlocal data
        data = picture(site)
        return bool(holds(data))

    try:
        async with asyncio.timeout(SETTLE):
            while not await asyncio.to_thread(check):
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"{what}: {data}") from None
    return data


def no_profiles(chargers: list[SmartCharger]) -> bool:
    """True when no charger holds a charging profile of ours."""
    return all(cp.profiles.installed == [] for cp in chargers)


def test_without_load_management_six_32_amp_connectors_on_32_amps_each_charge_at_their_rating(
    smart: ClockedServer,
) -> None:
    """DESIGN "Load management" off: 6 x 32 A on a 32 A root group each get 32 A and no charger receives a
    SetChargingProfile (no R-88 failsafe); the off-peak gate still pauses them (R-41, R-56) and its
    opening clears the pause; switched on, the §7.5 shares (R-81, R-82: five at 6.4 A, one paused);
    switched off again, the failsafes and TxProfiles are cleared and each is back at 32 A."""
    site = Site(smart, smart.account(), 32, load_management=False)
    chargers = [make_charger(smart, site, f"LM{n}", None) for n in range(6)]

    async def scenario() -> None:
        async with running(chargers):
            for cp in chargers:
                cp.begin()
            await until(lambda: all(cp.connectors[1].transaction is not None for cp in chargers), "six sessions")
            data = await shown(site, lambda d: all_reasons(d, chargers) == ["max"] * 6, "each at its rating")
            assert (data["load_management"], data["groups"][0]["balanced"]) == (False, False)
            assert [connectors_shown(data)[cp.identity]["limit_amps"] for cp in chargers] == ["32.0"] * 6
            await advance(smart, 2 * SMART_SETTINGS["smart_retry_interval"])
            await asyncio.sleep(0.3)
            assert [cp.offered(1) for cp in chargers] == RATED
            assert [cp.profile_frames for cp in chargers] == [0] * 6, "no profile sent over the sockets"
            await gated(site, chargers)
            await balanced_then_not(site, chargers)

    try:
        asyncio.run(scenario())
    finally:
        site.api.close()


def all_reasons(data: dict[str, Any], chargers: list[SmartCharger]) -> list[str]:
    """The reason shown for each charger's connector ("absent" when not shown yet)."""
    found = connectors_shown(data)
    return [found[cp.identity]["reason"] if cp.identity in found else "absent" for cp in chargers]


async def gated(site: Site, chargers: list[SmartCharger]) -> None:
    """R-56 with load management off: outside the window 0 A, inside it each back at 32 A with no profile left."""
    now = site.server.clock.now()
    window = {"off_peak_start": hhmm(now + timedelta(minutes=30)), "off_peak_end": hhmm(now + timedelta(minutes=90))}
    await site.put("/smart-charging", {"timezone": "UTC", "smart_charging": "off_peak", **window})
    await offered_are(chargers, [0.0] * 6, "outside the off-peak window")
    await advance(site.server, 45 * 60)
    await offered_are(chargers, RATED, "the window opened")
    await until(lambda: no_profiles(chargers), "the pauses cleared")
    await site.put("/smart-charging", {"timezone": "UTC", "smart_charging": "disabled"})


async def balanced_then_not(site: Site, chargers: list[SmartCharger]) -> None:
    """On: R-81/R-82 shares and R-88 failsafes; off again: everything balancing installed is cleared."""
    await site.put("", {"load_management": True})
    shares = [0.0] + [6.4] * 5  # the sessions started together: which one is last to arrive varies
    await until(lambda: sorted(cp.offered(1) for cp in chargers) == shares, "R-81, R-82: five share, one waits")
    assert all(any(p.connector_id == 0 for p in cp.profiles.installed) for cp in chargers), "R-88 failsafes"
    await site.put("", {"load_management": False})
    await offered_are(chargers, RATED, "load management off again")
    await until(lambda: no_profiles(chargers), "failsafes and TxProfiles cleared")
    data = await shown(site, lambda d: all_reasons(d, chargers) == ["max"] * 6, "the picture follows")
    assert data["load_management"] is False


def test_a_charger_that_connects_without_booting_gets_nothing_until_its_boot_is_accepted(
    smart: ClockedServer, caplog: pytest.LogCaptureFixture
) -> None:
    """DESIGN "Load management", OCPP 1.6 §4.2: connected to a balanced site but not booted, the charger
    is sent no configuration read (R-17) and no failsafe (R-88), also after the retry interval; once
    its boot is Accepted, the read comes after the boot's answer, a failed read is logged once with
    the reason, and the profiles follow (R-89)."""
    site = Site(smart, smart.account(), 32)
    identity = site.charger(f"NB-{site.site['id']}")["identity"]

    async def scenario() -> None:
        async with open_charger(smart, identity) as ws:
            cp = Raw(ws)
            await cp.result("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"})
            await shown(site, lambda d: looked_at(d, identity), "a control run saw the connected charger")
            await advance(smart, 2 * SMART_SETTINGS["smart_retry_interval"])
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.5):
                    await ws.recv()
            await ws.send(json.dumps([2, "boot", "BootNotification", BOOT]))
            assert json.loads(await ws.recv())[:2] == [3, "boot"]
            read = json.loads(await ws.recv())
            assert read[:3] == [2, read[1], "GetConfiguration"], read
            await ws.send(json.dumps([4, read[1], "NotSupported", "no such keys", {}]))
            failsafe = json.loads(await ws.recv())
            assert failsafe[2] == "SetChargingProfile" and failsafe[3]["connectorId"] == 0, failsafe
            await ws.send(json.dumps([3, failsafe[1], {"status": "Accepted"}]))

    try:
        with caplog.at_level(logging.WARNING, logger="voltline.smart"):
            asyncio.run(scenario())
    finally:
        site.api.close()
    reads = [r.getMessage() for r in caplog.records if "smart-charging configuration" in r.getMessage()]
    assert reads == [f"{identity}: could not read its smart-charging configuration: it answered CALLERROR NotSupported"
                     " (no such keys)"]  # fmt: skip


def looked_at(data: dict[str, Any], identity: str) -> bool:
    """True once a run shows the charger's connector: connected, but reserved as it is not booted (R-87)."""
    connector = connectors_shown(data).get(identity)
    return connector is not None and connector["online"] and connector["reason"] == "offline_reserved"
