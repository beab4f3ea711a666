"""Smart charging end to end (spec/smart-charging.md §4-§9): a stepped clock, simulated chargers over real sockets.

The chargers are the simulator's, one connector each, with cars that take 32 A, so that what a
connector is offered is what its installed profiles allow (`limit_at`). Every SetChargingProfile
a charger answers is checked against the invariant of R-85: the sum of the limits offered to the
connectors that charge never exceeds the group's capacity. The server's clock is moved across
off-peak window edges and price slots; the chargers' clock follows it.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.clocked import ClockedServer, FollowingClock, SteppedClock
from tests.conftest import LiveServer, server_settings
from tests.support.smart_e2e import (
    CAPACITY,
    SMART_SETTINGS,
    Ledger,
    Site,
    SmartCharger,
    advance,
    capability_rows,
    charger_id_of,
    hhmm,
    make_charger,
    offered_are,
    profile_rows,
    running,
    three_more_arrive,
    until,
    until_state,
    ws_base,
)
from voltline.domain.prices import PriceSlot
from voltline.domain.site_view import SiteView
from voltline.services.smart_control import controller
from voltline.simulator.fleet import connector_limits
from voltline.smart.scheduler import Send
from voltline.store.prices import store_prices

# ---------------------------------------------------------------------- six chargers on 32 A


def six_on_32_amps(
    smart: ClockedServer, prefix: str, scenario: Callable[[Site, list[SmartCharger]], Awaitable[None]]
) -> Ledger:
    """Six chargers on a new 32 A site, connected while `scenario` plays; what they were sent."""
    site = Site(smart, smart.account(), 32)
    ledger = Ledger(CAPACITY)
    chargers = [make_charger(smart, site, f"{prefix}{n}", ledger) for n in range(6)]

    async def main() -> None:
        async with running(chargers):
            await scenario(site, chargers)

    try:
        asyncio.run(main())
    finally:
        site.api.close()
    return ledger


def test_a_32_amp_group_is_shared_paused_and_resumed_as_chargers_come_and_go(smart: ClockedServer) -> None:
    """spec/smart-charging.md R-81, R-82, R-85, R-41, R-56, R-66, R-89 and §7.5 vectors, end to end."""

    async def scenario(site: Site, chargers: list[SmartCharger]) -> None:
        await arrivals(chargers)
        await off_peak(site, chargers[1:])
        await price_gate(site, chargers[1:])
        await reconnect(chargers[1:])

    ledger = six_on_32_amps(smart, "LB", scenario)
    assert ledger.frames > 20
    assert ledger.violations == []


def test_a_big_sites_run_allocates_and_plans_in_a_thread_with_the_same_limits(
    smart: ClockedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above `BIG_SITE` connectors a run's pure steps (allocation, sends, states) leave the event loop
    for a thread, and the young generations are collected before the run: the arrivals of R-81 and
    R-82 give the same limits, Σ stays within 32 A, and the planning did run off the loop thread."""
    threads: set[str] = set()  # where a site with connectors was planned
    plan = controller._plan

    def recorded(view: SiteView, *args: Any) -> list[Send]:
        if view.connectors:
            threads.add(threading.current_thread().name)
        return plan(view, *args)

    collections: list[int] = []
    collect = gc.collect

    def counted(generation: int = 2) -> int:
        collections.append(generation)
        return collect(generation)

    monkeypatch.setattr(controller, "BIG_SITE", 0)
    monkeypatch.setattr(controller, "_plan", recorded)
    monkeypatch.setattr(controller.gc, "collect", counted)
    ledger = six_on_32_amps(smart, "BG", lambda _site, chargers: arrivals(chargers))
    assert ledger.violations == []
    loop_thread = smart._thread.name if smart._thread is not None else ""
    assert threads and loop_thread not in threads, (threads, loop_thread)
    assert 1 in collections, "the young generations are collected before a big site's run"


async def arrivals(chargers: list[SmartCharger]) -> None:
    """Three share 32 A (10.6 each), a 4th and 5th bring 8.0 and 6.4, a 6th waits, a stop lets it in."""
    await offered_are(chargers, [0.0] * 6, "R-88: the failsafe of 32 A / 6 connectors is below 6 A, so 0")
    for cp in chargers[:3]:
        cp.begin()
    await offered_are(chargers[:3], [10.6] * 3, "R-82: 32 A over three")
    await three_more_arrive(chargers)
    await asyncio.sleep(0.5)
    await offered_are(chargers, [6.4] * 5 + [0.0], "R-81: 6 x 6 A > 32 A, the sixth is paused")
    chargers[0].finish()
    await until(lambda: chargers[0].connectors[1].transaction is None, "the first stopped")
    await offered_are(chargers[1:], [6.4] * 5, "the paused one is let in")
    # The simulated car draws what the profile allows, and the fleet report shows both.
    await until(lambda: connector_limits(chargers[5]) == "1: 6.4/6.4", "limit and draw in the report")


async def off_peak(site: Site, chargers: list[SmartCharger]) -> None:
    """R-56: outside the window everyone is paused; inside, balanced again; after it, paused again."""
    now = site.server.clock.now()
    window = {"off_peak_start": hhmm(now + timedelta(minutes=30)), "off_peak_end": hhmm(now + timedelta(minutes=90))}
    await site.put("/smart-charging", {"timezone": "UTC", "smart_charging": "off_peak", **window})
    await offered_are(chargers, [0.0] * 5, "outside the off-peak window")
    await until_state(site, "paused", count=6)
    await advance(site.server, 45 * 60)
    await offered_are(chargers, [6.4] * 5, "the window opened")
    await advance(site.server, 60 * 60)
    await offered_are(chargers, [0.0] * 5, "the window closed")
    await site.put("/smart-charging", {"timezone": "UTC", "smart_charging": "disabled"})
    await offered_are(chargers, [6.4] * 5, "smart charging disabled")


async def price_gate(site: Site, chargers: list[SmartCharger]) -> None:
    """R-66: a price above the manual threshold pauses; the next, cheaper slot resumes."""
    now = site.server.clock.now()
    slot = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    quarter = timedelta(minutes=15)
    slots = [
        PriceSlot(slot, slot + quarter, Decimal("300.5")),  # 30.05 ct/kWh
        PriceSlot(slot + quarter, slot + 2 * quarter, Decimal("120")),
    ]
    await asyncio.to_thread(site.server.run, lambda: store_prices(site.server.runtime.db, "NL", slots))
    await site.put("", {"price_zone": "NL"})
    body = {"timezone": "UTC", "smart_charging": "day_ahead_pricing", "day_ahead_pricing_strategy": "manual"}
    await site.put("/smart-charging", {**body, "day_ahead_pricing_threshold": 20})
    await offered_are(chargers, [0.0] * 5, "price above the threshold")
    await advance(site.server, (slot + quarter - now).total_seconds() + 1)
    await offered_are(chargers, [6.4] * 5, "the next slot is cheaper")
    await site.put("/smart-charging", {"timezone": "UTC", "smart_charging": "disabled"})


async def reconnect(chargers: list[SmartCharger]) -> None:
    """R-89: a charger that lost its connection and its profiles gets its limit back."""
    target = chargers[2]
    frames = target.profile_frames
    target.reboot_link()
    await until(lambda: target.profile_frames > frames, "profiles re-sent after the reconnect")
    await offered_are(chargers, [6.4] * 5, "limits back after the reconnect")


# ---------------------------------------------------------------------- a charger that refuses 0 A


def test_a_charger_that_refuses_0_amps_is_held_at_6_amps_and_flagged(smart: ClockedServer) -> None:
    """R-43: TxProfile 0 A refused -> TxDefault 0 A -> 0 W -> 6 A; the connector shows `rejected`."""
    account = smart.account()
    site = Site(smart, account, 16)
    stubborn = make_charger(smart, site, "ZERO", None, reject_zero_amp=True)

    async def scenario() -> None:
        async with running([stubborn]):
            stubborn.begin()
            await offered_are([stubborn], [16.0], "the whole group")
            now = smart.clock.now()
            window = {"off_peak_start": hhmm(now + timedelta(hours=2)), "off_peak_end": hhmm(now + timedelta(hours=3))}
            await site.put("/smart-charging", {"timezone": "UTC", "smart_charging": "off_peak", **window})
            await offered_are([stubborn], [6.0], "reduced, not paused")
            await until_state(site, "rejected")
            await site.put("/smart-charging", {"timezone": "UTC", "smart_charging": "disabled"})
            await offered_are([stubborn], [16.0], "resumed")

    try:
        asyncio.run(scenario())
    finally:
        site.api.close()
    rows = smart.run(lambda: capability_rows(smart))
    assert any(row["pause_unsupported"] for row in rows)


def test_a_charger_that_refuses_every_profile_is_flagged_rejected(smart: ClockedServer) -> None:
    """R-43: after the fallbacks a charger that refuses profiles shows `rejected`."""
    account = smart.account()
    site = Site(smart, account, 16)
    refusing = make_charger(smart, site, "NOPE", None, reject_profiles=True)

    async def scenario() -> None:
        async with running([refusing]):
            refusing.begin()
            await until_state(site, "rejected")

    try:
        asyncio.run(scenario())
    finally:
        site.api.close()


# ---------------------------------------------------------------------- a restart mid-session


def test_the_controller_state_survives_a_server_restart(
    server: LiveServer, fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """DESIGN: installed profiles survive a restart; R-87 offline reservations keep Σ ≤ capacity throughout."""
    settings = server_settings(fresh_database(server.backend), str(tmp_path_factory.mktemp("data")), **SMART_SETTINGS)
    first = ClockedServer(settings, server.backend, clock=SteppedClock())
    first.start()
    account = first.account()
    site = Site(first, account, 32)
    ledger = Ledger(CAPACITY)
    chargers = [make_charger(first, site, f"RS{n}", ledger) for n in range(5)]
    servers = [first]
    ids = {cp.identity: charger_id_of(first, cp.identity) for cp in chargers}

    async def scenario() -> None:
        async with running(chargers):
            await offered_are(chargers, [6.4] * 5, "R-88: the failsafe is 32 A / 5 connectors")
            for cp in chargers[:4]:
                cp.begin()
            await offered_are(chargers[:4], [8.0] * 4, "four share 32 A")
            await asyncio.to_thread(first.stop)
            second = ClockedServer(settings, server.backend, clock=SteppedClock())
            await asyncio.to_thread(second.start)
            servers.append(second)
            for cp in chargers:
                cp.url = f"{ws_base(second)}/{cp.identity}"
                assert isinstance(cp.clock, FollowingClock)
                cp.clock.leader = second.clock
            await until(lambda: all(cp.connection_state == "accepted" for cp in chargers), "back", timeout=60)
            await offered_are(chargers[:4], [8.0] * 4, "limits kept after the restart")
            chargers[4].begin()
            await offered_are(chargers, [6.4] * 5, "a fifth after the restart")
        assert ledger.violations == [], ledger.violations
        assert ledger.frames >= 5

    try:
        asyncio.run(scenario())
        rows = servers[-1].run(lambda: profile_rows(servers[-1]))
        kept = {
            identity: row["status"]
            for row in rows
            for identity, charger_id in list(ids.items())[:4]
            if row["charger_id"] == charger_id and row["purpose"] == "TxProfile"
        }
        assert kept == dict.fromkeys(list(ids)[:4], "accepted")
    finally:
        site.api.close()
        servers[-1].stop()
