"""R-84 idle reclaim end to end: a car that takes much less than its share gives the rest back, until it ramps up.

A live server on a stepped clock and simulated chargers over real sockets (tests/e2e/test_smart_e2e.py).
The simulated meters send `Current.Import` every real second; each step of the clock by
`VOLTLINE_SMART_METER_INTERVAL` (30 s) brings the site's watch run, which counts the newest
reading of each connector once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.clocked import ClockedServer
from tests.conftest import LiveServer
from tests.support.smart_e2e import (
    CAPACITY,
    Ledger,
    Site,
    SmartCharger,
    advance,
    clocked_server,
    finish_scenario,
    limits,
    make_charger,
    offered_are,
    power_management,
    running,
    until,
)
from voltline.simulator.meter import Car

METER_INTERVAL = 30.0  # the server's default VOLTLINE_SMART_METER_INTERVAL
WATCH_STEPS = 12  # clock steps a change may take: three readings, each a step apart, and the sends


def small_car(_rng: Any) -> Car:
    """A three-phase car that takes 4 A at most (an onboard charger that throttles, or a nearly full battery)."""
    return Car(4.0, 3, 1_000_000, 10.0)


async def stepped_until(server: ClockedServer, chargers: list[SmartCharger], expected: list[float], what: str) -> int:
    """Step the clock by the watch interval until the chargers offer `expected`; the steps it took."""
    for step in range(1, WATCH_STEPS + 1):
        await advance(server, METER_INTERVAL)
        await asyncio.sleep(1.2)  # a fresh reading from every meter (they sample every real second)
        if [cp.offered(1) for cp in chargers] == expected:
            return step
    await offered_are(chargers, expected, what)  # one last wait; raises with what is offered
    return WATCH_STEPS + 1


def shown(site: Site, chargers: list[SmartCharger]) -> list[tuple[str | None, str]]:
    """(limit_amps, reason) of each charger's connector in the power-management tree, now."""
    return limits(power_management(site.api, site.path), chargers)


def test_a_car_drawing_little_gives_its_share_to_the_others_until_it_ramps_up(smart: ClockedServer) -> None:
    """R-84 with R-82 and R-85 on 32 A: 10.6 A each; the 4 A car is capped at 6.0 A (max(6, 1.2 x 4.0)) and the
    other two get 13.0 A; once the car draws its whole cap (6.0 A > 90 %), all three are back at 10.6 A.
    Σ offered stays within 32 A at every profile the chargers receive."""
    site = Site(smart, smart.account(), 32)
    ledger = Ledger(CAPACITY)
    slow = make_charger(smart, site, "RC0", ledger, cars=small_car)
    others = [make_charger(smart, site, f"RC{n}", ledger) for n in (1, 2)]
    chargers = [slow, *others]

    async def scenario() -> None:
        async with running(chargers):
            for cp in chargers:
                cp.begin()
            await offered_are(chargers, [10.6] * 3, "R-82: 32 A over three")
            assert slow.connectors[1].meter.current == 4.0
            steps = await stepped_until(smart, chargers, [6.0, 13.0, 13.0], "R-84: the small car is capped")
            assert steps >= 3, f"capped after {steps} readings: R-84 wants more than 2 low samples"
            pictured = await asyncio.to_thread(shown, site, chargers)
            assert pictured == [("6.0", "reclaimed"), ("13.0", "share"), ("13.0", "share")]
            slow.connectors[1].meter.car = Car(32.0, 3, 1_000_000, 10.0)  # the car wants more now
            await stepped_until(smart, chargers, [10.6] * 3, "R-84: ramp-up gives the share back")
            pictured = await asyncio.to_thread(shown, site, chargers)
            assert pictured == [("10.6", "share")] * 3
        assert ledger.frames >= 9
        assert ledger.violations == []

    finish_scenario(site, scenario)


@pytest.fixture(scope="module")
def no_reclaim(
    server: LiveServer, fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClockedServer]:
    """The e2e server with `VOLTLINE_SMART_RECLAIM=false`."""
    with clocked_server(server, fresh_database, tmp_path_factory, smart_reclaim=False) as live:
        yield live


def test_with_reclaim_switched_off_a_car_drawing_little_keeps_its_share(no_reclaim: ClockedServer) -> None:
    """VOLTLINE_SMART_RECLAIM=false: the 4 A car keeps its 10.6 A share through as many readings as
    the first test needed to cap it and more."""
    site = Site(no_reclaim, no_reclaim.account(), 32)
    slow = make_charger(no_reclaim, site, "NR0", None, cars=small_car)
    chargers = [slow, *(make_charger(no_reclaim, site, f"NR{n}", None) for n in (1, 2))]

    async def scenario() -> None:
        async with running(chargers):
            for cp in chargers:
                cp.begin()
            await offered_are(chargers, [10.6] * 3, "R-82: 32 A over three")
            for _ in range(6):
                await advance(no_reclaim, METER_INTERVAL)
                await asyncio.sleep(1.2)
            assert [cp.offered(1) for cp in chargers] == [10.6] * 3
            assert slow.connectors[1].meter.current == 4.0
            pictured = await asyncio.to_thread(shown, site, chargers)
            assert pictured == [("10.6", "share")] * 3

    finish_scenario(site, scenario)


def test_with_reclaim_switched_off_a_metered_group_still_reads_the_connectors_draw(no_reclaim: ClockedServer) -> None:
    """§7.2 dynamic balancing, the §7.5 meter vector's arithmetic end to end: C = 25 A, margin 2 A.

    The group meter reads the house load plus what the car draws. With 12 A of house load the car
    gets 25 - 2 - 12 = 11.0 A; with 10 A it gets 13.0 A. The connectors' `Current.Import` is read
    for the group meter even with idle reclaim off: without it, the car's own draw would count as
    house load (at 10 A of house load the meter reads 21 A, which leaves the car nothing)."""
    site = Site(no_reclaim, no_reclaim.account(), 25)
    team = f"/api/v2/teams/{site.account.team_id}"
    meter = site.api.post(f"{team}/meters", json={"type": "ct_meter"}).json()["data"]
    root = site.api.get(f"{site.path}/groups").json()["data"][0]
    assert site.api.put(f"{site.path}/groups/{root['id']}", json={"meter_id": meter["id"]}).status_code == 200
    charger = make_charger(no_reclaim, site, "MT0", None)

    async def house(amps: float) -> float:
        """Post the meter's reading: the house load plus the car's draw now, on each phase; then a metered run."""
        await asyncio.sleep(1.5)  # the car reports what it draws now (every real second)
        total = amps + charger.connectors[1].meter.current
        body = {"l1": total, "l2": total, "l3": total}
        response = await asyncio.to_thread(site.api.post, f"{team}/meters/{meter['id']}/readings", json=body)
        assert response.status_code == 200, response.text
        await advance(no_reclaim, METER_INTERVAL)  # a metered group runs every VOLTLINE_SMART_METER_INTERVAL
        return total

    async def scenario() -> None:
        await house(0)
        async with running([charger]):
            charger.begin()
            await until(lambda: charger.connectors[1].meter.current > 0, "the car charges")
            await house(12)
            await offered_are([charger], [11.0], "25 A less a 2 A margin less 12 A of house load")
            assert await house(10) == 21.0
            await offered_are([charger], [13.0], "21 A on the meter, 11 A of it the car's: 10 A of house load")

    finish_scenario(site, scenario)
