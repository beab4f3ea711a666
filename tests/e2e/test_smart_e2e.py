"""Smart charging end to end (issue 5): a live server on a stepped clock, simulated chargers over real sockets.

The chargers are the simulator's, one connector each, with cars that take 32 A, so that what a
connector is offered is what its installed profiles allow (`limit_at`). Every SetChargingProfile
a charger answers is checked against the invariant of R-85: the sum of the limits offered to the
connectors that charge never exceeds the group's capacity. The server's clock is moved across
off-peak window edges and price slots; the chargers' clock follows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import select
from websockets.asyncio.client import ClientConnection

from tests.clocked import ClockedServer, FollowingClock, SteppedClock
from tests.conftest import LiveServer, server_settings
from tests.ocpp.gateway_support import identity_only
from voltline.domain.prices import PriceSlot
from voltline.domain.site_view import SiteView
from voltline.services.accounts import Account
from voltline.services.smart_control import controller
from voltline.simulator import SimulatedCharger
from voltline.simulator import sessions as sim_sessions
from voltline.simulator.fleet import connector_limits
from voltline.simulator.meter import Car
from voltline.simulator.profiles import ChargingProfiles, Limits
from voltline.smart.scheduler import Send
from voltline.store.prices import upsert_prices
from voltline.store.schema import charger_capabilities, chargers, charging_profiles

SITE_BODY = {"name": "Depot", "street": "Main", "house_number": 1, "postal_code": "1234AB", "city": "Utrecht"}
CAPACITY = 32.0
SMART_SETTINGS: dict[str, Any] = {"smart_debounce": 0.05, "smart_retry_interval": 1.0, "ocpp_call_timeout": 5.0}
C = TypeVar("C", bound="SmartCharger")
SETTLE = 15.0  # seconds a change may take to reach the chargers (debounce 0.05 s in these tests)


def big_car(_rng: Any) -> Car:
    """A three-phase car that takes 32 A and never fills up."""
    return Car(32.0, 3, 1_000_000, 10.0)


class Ledger:
    """The chargers of one group, and the worst sum of offered limits seen at any profile answer."""

    def __init__(self, capacity: float) -> None:
        self.capacity = capacity
        self.chargers: list[SmartCharger] = []
        self.frames = 0
        self.violations: list[tuple[int, float]] = []

    def offered_sum(self) -> float:
        """Σ over the controlled charging connectors of the limit their installed profiles give now (R-12).

        A session that has just begun runs on the charger-wide failsafe (R-88) until the control
        loop gives it a profile of its own; R-85 is about the limits the loop installs.
        """
        total = 0.0
        for cp in self.chargers:
            for conn in cp.connectors.values():
                if conn.transaction is not None and cp.controlled(conn.number):
                    total += cp.offered(conn.number)
        return round(total, 1)

    def check(self) -> None:
        """R-85: at every profile step the installed limits fit the capacity."""
        self.frames += 1
        total = self.offered_sum()
        if total > self.capacity + 1e-6:
            self.violations.append((self.frames, total))


class SmartCharger(SimulatedCharger):
    """The simulator's charger, reporting each profile change to the ledger and letting the test cut its socket."""

    def __init__(self, *args: Any, ledger: Ledger | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ledger = ledger
        self.socket: ClientConnection | None = None
        self.profile_frames = 0
        if ledger is not None:
            ledger.chargers.append(self)

    def offered(self, number: int) -> float:
        """The current the connector's profiles allow now (0 below 6 A, as the EVSE does)."""
        conn = self.connectors[number]
        limit = self.profiles.limit_at(number, self.now(), sim_sessions.session_of(conn), conn.meter.active_phases)
        amps = self.max_current if limit is None else min(limit, self.max_current)
        return amps if amps >= 6.0 else 0.0

    def controlled(self, number: int) -> bool:
        """True when a profile of the connector's own governs it (a TxProfile of its session, or its TxDefault)."""
        tx = self.connectors[number].transaction
        tx_id = None if tx is None else tx.transaction_id
        return any(
            p.connector_id == number and (p.purpose == "TxDefaultProfile" or p.transaction_id == tx_id)
            for p in self.profiles.installed
        )

    def _answer(self, action: str, payload: Any) -> Any:
        answer = super()._answer(action, payload)
        if action in ("SetChargingProfile", "ClearChargingProfile"):
            self.profile_frames += 1
            if self.ledger is not None:
                self.ledger.check()
        return answer

    def _connect(self) -> Any:
        return self._kept(super()._connect())

    @contextlib.asynccontextmanager
    async def _kept(self, connecting: Any) -> AsyncIterator[ClientConnection]:
        async with connecting as ws:
            self.socket = ws
            yield ws

    def begin(self, number: int = 1) -> None:
        """Plug a car in and start a session."""
        self.spawn(lambda: sim_sessions.run_session(self, self.connectors[number], "04A2B3C4D55E80", remote=False))

    def finish(self, number: int = 1) -> None:
        """Stop the connector's session."""
        sim_sessions.end_transaction(self, self.connectors[number], "Local")

    def reboot_link(self) -> None:
        """Lose the connection and every installed profile, as a charger that restarts its controller."""
        self.profiles = ChargingProfiles(Limits(len(self.connectors)), self.max_current)
        sim_sessions.refresh_all(self)
        if self.socket is not None and self.socket.transport is not None:
            self.socket.transport.abort()


# ---------------------------------------------------------------------- helpers


class Site:
    """A site of the account made through the API, with helpers to steer it."""

    def __init__(
        self, server: ClockedServer, account: Account, total_amps: int, *, load_management: bool = True
    ) -> None:
        """A new site whose root group has `total_amps`, balanced unless `load_management` is off (DESIGN)."""
        self.server, self.account = server, account
        self.api = server.client(account)
        self.base = f"/api/v2/teams/{account.team_id}/sites"
        body = {**SITE_BODY, "country": "NL", "load_management": load_management}
        response = self.api.post(self.base, json=body)
        assert response.status_code == 201, response.text
        self.site = response.json()["data"]
        self.path = f"{self.base}/{self.site['id']}"
        root = self.api.get(f"{self.path}/groups").json()["data"][0]
        response = self.api.put(f"{self.path}/groups/{root['id']}", json={"total_amps": total_amps})
        assert response.status_code == 200, response.text

    def charger(self, identity: str) -> dict[str, Any]:
        """A charger of the site (in its root group)."""
        response = self.api.post(f"{self.path}/chargers", json={"identity": identity})
        assert response.status_code == 201, response.text
        charger: dict[str, Any] = identity_only(self.api, self.account, response.json()["data"])
        return charger

    async def put(self, path: str, body: dict[str, Any]) -> None:
        """PUT through the API without blocking the chargers' loop."""
        response: httpx.Response = await asyncio.to_thread(self.api.put, self.path + path, json=body)
        assert response.status_code == 200, response.text

    async def states(self) -> dict[int, str]:
        """`smart_charging_state` per connector id, as the API shows it."""
        response = await asyncio.to_thread(self.api.get, f"{self.path}/connectors")
        return {item["id"]: item["smart_charging_state"] for item in response.json()["data"]}


def ws_base(server: LiveServer) -> str:
    """The OCPP endpoint base of a live server."""
    return server.base_url.replace("http://", "ws://") + "/ocpp"


def make_charger(
    server: ClockedServer, site: Site, name: str, ledger: Ledger | None, kind: type[C] = SmartCharger, **options: Any
) -> C:
    """A simulated one-connector charger of the site (a `kind`, SmartCharger or a subclass), on the server's clock.

    Its cars take 32 A (`big_car`) unless `cars=` says otherwise; other `options` go to the simulator.
    """
    identity = site.charger(f"{name}-{site.site['id']}")["identity"]
    return kind(
        ws_base(server),
        identity,
        connectors=1,
        meter_interval=1.0,
        auto_sessions=False,
        session_seconds=100_000,
        unplug_seconds=0.05,
        clock=FollowingClock(server.clock),
        ledger=ledger,
        **{"cars": big_car, **options},
    )


async def until(check: Callable[[], bool], what: str, timeout: float = SETTLE) -> None:
    """Wait until the condition holds (polling the test's own loop); an AssertionError naming it when it does not."""
    try:
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out: {what}") from None


async def offered_are(chargers: list[SmartCharger], expected: list[float], what: str) -> None:
    """Wait until each charger offers the expected current on connector 1."""

    def holds() -> bool:
        return [cp.offered(1) for cp in chargers] == expected

    try:
        await until(holds, what)
    except AssertionError:
        raise AssertionError(f"{what}: offered {[cp.offered(1) for cp in chargers]}, expected {expected}") from None


@contextlib.asynccontextmanager
async def running(chargers: list[SmartCharger]) -> AsyncIterator[None]:
    """Run the chargers (connected and booted) for the block."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(cp.run(stop)) for cp in chargers]
    try:
        await until(lambda: all(cp.connection_state == "accepted" for cp in chargers), "chargers booted")
        yield
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 15)


async def advance(server: ClockedServer, seconds: float) -> None:
    """Move the server's clock (the chargers follow it)."""
    await asyncio.to_thread(server.run, lambda: server.clock.advance(seconds))


def hhmm(moment: datetime) -> str:
    """A wall-clock bound in UTC."""
    return moment.strftime("%H:%M")


# ---------------------------------------------------------------------- the scenario


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


async def three_more_arrive(chargers: list[SmartCharger]) -> None:
    """With three sharing 32 A: a fourth and a fifth bring 8.0 and 6.4 A each, then a sixth starts (R-82)."""
    chargers[3].begin()
    await offered_are(chargers[:4], [8.0] * 4, "a fourth arrives")
    chargers[4].begin()
    await offered_are(chargers[:5], [6.4] * 5, "a fifth arrives")
    chargers[5].begin()
    await until(lambda: chargers[5].connectors[1].transaction is not None, "the sixth started")


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
    await asyncio.to_thread(site.server.run, lambda: upsert_prices(site.server.runtime.db, "NL", slots))
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


async def until_state(site: Site, state: str, count: int = 1) -> None:
    """Wait until `count` connectors of the site show the state."""
    for _ in range(int(SETTLE / 0.1)):
        if list((await site.states()).values()).count(state) >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"no connector became {state}: {await site.states()}")


async def capability_rows(server: LiveServer) -> list[Any]:
    """Every stored charger capability row."""
    async with server.runtime.db.read() as conn:
        return list((await conn.execute(select(charger_capabilities))).mappings())


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


def charger_id_of(server: LiveServer, identity: str) -> int:
    """The id of a charger by identity."""

    async def read() -> int:
        async with server.runtime.db.read() as conn:
            return int(await conn.scalar(select(chargers.c.id).where(chargers.c.identity == identity)))

    return server.run(read)


async def profile_rows(server: LiveServer) -> list[Any]:
    """Every stored charging-profile row."""
    async with server.runtime.db.read() as conn:
        return list((await conn.execute(select(charging_profiles))).mappings())
