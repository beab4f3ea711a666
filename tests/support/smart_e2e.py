"""Smart-charging end-to-end helpers: chargers that record their profiles, a site, waits on a stepped clock."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from datetime import datetime
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import select
from websockets.asyncio.client import ClientConnection

from tests.clocked import ClockedServer, FollowingClock, SteppedClock
from tests.conftest import LiveServer, server_settings
from tests.ocpp.gateway_support import identity_only
from voltline.services.accounts import Account
from voltline.simulator import SimulatedCharger
from voltline.simulator import sessions as sim_sessions
from voltline.simulator.meter import Car
from voltline.simulator.profiles import ChargingProfiles, Limits
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
    """The chargers of one group, and the profile answers at which their limits broke R-85.

    By default Σ counts a session from the first profile of its own on (a TxProfile of its
    session, or its connector's TxDefault), and every answer with Σ above C is a violation.
    `physical=True` counts what the cars may draw: a session that has just begun runs on its
    charger's failsafe (R-88) until its TxProfile overrides that for the transaction (R-12,
    OCPP 1.6 §3.13). A failsafe of floor(C / n) beside sessions on larger shares puts Σ above C
    from the session's start until the loop's decreases are answered, which no order of sends
    prevents; what R-85 orders is that no current rises before they have made room, so only an
    answer that raises a connector's current with Σ then above C is a violation.
    """

    def __init__(self, capacity: float, *, physical: bool = False) -> None:
        self.capacity = capacity
        self.physical = physical
        self.chargers: list[SmartCharger] = []
        self.frames = 0
        self.peak = 0.0
        self.violations: list[tuple[int, float]] = []

    def offered_sum(self) -> float:
        """Σ over the charging connectors counted (see the class) of the limit their installed profiles give now."""
        total = 0.0
        for cp in self.chargers:
            for number in cp.charging():
                if self.physical or cp.controlled(number):
                    total += cp.offered(number)
        return round(total, 1)

    def check(self, charger: SmartCharger, before: dict[int, float]) -> None:
        """R-85 at one profile answer; `before` is what the charger's connectors offered before it."""
        self.frames += 1
        total = self.offered_sum()
        self.peak = max(self.peak, total)
        raised = any(charger.offered(n) > before[n] + 1e-6 for n in charger.charging() if n in before)
        if total > self.capacity + 1e-6 and (raised or not self.physical):
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

    def charging(self) -> list[int]:
        """The connectors with a transaction."""
        return [n for n, conn in self.connectors.items() if conn.transaction is not None]

    def _answer(self, action: str, payload: Any) -> Any:
        if action not in ("SetChargingProfile", "ClearChargingProfile"):
            return super()._answer(action, payload)
        before = {n: self.offered(n) for n in self.charging()}
        answer = super()._answer(action, payload)
        self.profile_frames += 1
        if self.ledger is not None:
            self.ledger.check(self, before)
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


async def three_more_arrive(chargers: list[SmartCharger]) -> None:
    """With three sharing 32 A: a fourth and a fifth bring 8.0 and 6.4 A each, then a sixth starts (R-82)."""
    chargers[3].begin()
    await offered_are(chargers[:4], [8.0] * 4, "a fourth arrives")
    chargers[4].begin()
    await offered_are(chargers[:5], [6.4] * 5, "a fifth arrives")
    chargers[5].begin()
    await until(lambda: chargers[5].connectors[1].transaction is not None, "the sixth started")


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


def finish_scenario(site: Site, scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run the scenario on a loop of its own, closing the site's client afterwards."""
    try:
        asyncio.run(scenario())
    finally:
        site.api.close()


def power_management(api: httpx.Client, path: str) -> dict[str, Any]:
    """GET the site's power management (200) and return its data."""
    response = api.get(f"{path}/power-management")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def connectors_of(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every connector in the tree, by charger identity."""
    found: dict[str, dict[str, Any]] = {}

    def walk(groups: list[dict[str, Any]]) -> None:
        for group in groups:
            found.update({c["charger"]["identity"]: c for c in group["connectors"]})
            walk(group["groups"])

    walk(data["groups"])
    return found


def limits(data: dict[str, Any], chargers: list[SmartCharger]) -> list[tuple[str | None, str]]:
    """(limit_amps, reason) of each charger's connector, in order."""
    shown = connectors_of(data)
    return [(shown[cp.identity]["limit_amps"], shown[cp.identity]["reason"]) for cp in chargers]


@contextlib.contextmanager
def clocked_server(
    server: LiveServer,
    fresh_database: Callable[[str], str],
    tmp_path_factory: pytest.TempPathFactory,
    **settings: Any,
) -> Iterator[ClockedServer]:
    """A server of its own on a SteppedClock with `SMART_SETTINGS` (and `settings` on top), on `server`'s backend."""
    data = str(tmp_path_factory.mktemp("data"))
    live = ClockedServer(
        server_settings(fresh_database(server.backend), data, **{**SMART_SETTINGS, **settings}),
        server.backend,
        clock=SteppedClock(),
    )
    live.start()
    try:
        yield live
    finally:
        live.stop()
