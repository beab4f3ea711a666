"""Two gateways, one api and one worker as real processes on PostgreSQL and NATS (DESIGN "Cluster").

A charger on gateway A receives a command asked of the api process; after it reconnects to
gateway B, the next one reaches it there. Then gateway A is killed (SIGKILL) while chargers
hold sockets to it: every MeterValues it answered is in the database, the chargers that
reconnect to B receive commands through the api again, and the one that stays away is shown
offline by the api within two announce intervals (the worker's gateway watch; nothing was
written by A, which died without a word). Needs `VOLTLINE_TEST_POSTGRES_URL` and
`VOLTLINE_TEST_NATS_URL` (`.ci/run` sets both).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ocpp.v16 import call
from sqlalchemy import func, select

from tests.conftest import NATS_URL, needs_cluster
from tests.support.cluster import ResettableCharger, connection_status, online, restart, role_processes
from tests.support.killable_server import Fleet, KillableServer, seed_fleet
from voltline.store.engine import Database
from voltline.store.schema import chargers, meter_frames

pytestmark = [
    needs_cluster,
    pytest.mark.slow,
]
ANNOUNCE_INTERVAL = 1.0  # seconds (VOLTLINE_GATEWAY_ANNOUNCE_INTERVAL)
METER_VALUES = 5  # per charger on gateway A before the kill


class Cluster:
    """The fleet, the database URL and the four processes by name."""

    def __init__(self, fleet: Fleet, url: str, servers: dict[str, KillableServer]) -> None:
        self.fleet = fleet
        self.url = url
        self.servers = servers


@pytest.fixture
def cluster(fresh_database: Callable[[str], str], tmp_path: Path) -> Iterator[Cluster]:
    """gateway-a, gateway-b, api and worker on a fresh database and NATS subject prefix."""
    url = fresh_database("postgres")
    fleet = asyncio.run(seed_fleet(url, 4, 64))
    roles = {"gateway-a": "gateway", "gateway-b": "gateway", "api": "api", "worker": "worker"}
    # Only the calls the test asks for reach the chargers (the control lease is tested elsewhere).
    settings = {"VOLTLINE_GATEWAY_ANNOUNCE_INTERVAL": str(ANNOUNCE_INTERVAL), "VOLTLINE_SMART_CONTROL": "false"}
    with role_processes(url, tmp_path, NATS_URL, roles, settings) as servers:
        yield Cluster(fleet, url, servers)


async def meter(charger: ResettableCharger, count: int, start: datetime) -> int:
    """Send `count` MeterValues a minute apart, each answered; how many were answered."""
    answered = 0
    for n in range(count):
        stamp = (start + timedelta(minutes=n)).isoformat().replace("+00:00", "Z")
        sampled = [{"value": str(1000 + n), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]
        await charger.call(
            call.MeterValues(connector_id=1, meter_value=[{"timestamp": stamp, "sampled_value": sampled}])
        )
        answered += 1
    return answered


async def stored(url: str, column: str, charger_ids: list[int]) -> dict[int, object]:
    """Per charger: its meter frames counted (`frames`) or its `gateway_id`."""
    db = Database(url)
    try:
        async with db.read() as conn:
            if column == "frames":
                query = (
                    select(meter_frames.c.charger_id, func.count())
                    .where(meter_frames.c.charger_id.in_(charger_ids))
                    .group_by(meter_frames.c.charger_id)
                )
            else:
                query = select(chargers.c.id, chargers.c.gateway_id).where(chargers.c.id.in_(charger_ids))
            return {int(key): value for key, value in (await conn.execute(query)).all()}
    finally:
        await db.close()


def test_commands_follow_a_charger_across_gateways_and_a_killed_gateways_chargers_go_offline(cluster: Cluster) -> None:
    fleet, api = cluster.fleet, cluster.servers["api"]
    gateway_a, gateway_b = cluster.servers["gateway-a"], cluster.servers["gateway-b"]
    (mover, moved_id), (stayer, stayer_id), (returner, returner_id), (away, away_id) = fleet.chargers.items()

    async def scenario() -> None:
        # A command asked of the api reaches the charger on gateway A, then on gateway B after a reconnect.
        async with online(gateway_a, fleet, mover) as charger:
            answer = await restart(api, fleet, moved_id, "Hard")
            assert answer.status_code == 200 and answer.json()["message"] == "Accepted", answer.text
            assert charger.resets == ["Hard"]
            assert await stored(cluster.url, "gateway", [moved_id]) == {moved_id: "gateway-a"}
        async with online(gateway_b, fleet, mover) as charger:
            answer = await restart(api, fleet, moved_id, "Soft")
            assert answer.status_code == 200, answer.text
            assert charger.resets == ["Soft"], "the api reached it through gateway B"
            assert await stored(cluster.url, "gateway", [moved_id]) == {moved_id: "gateway-b"}

        # Three chargers on gateway A send MeterValues; A is killed; two reconnect to B, one stays away.
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        async with (
            online(gateway_a, fleet, stayer) as first,
            online(gateway_a, fleet, returner) as second,
            online(gateway_a, fleet, away) as third,
        ):
            answered = {
                charger_id: await meter(charger, METER_VALUES, start)
                for charger_id, charger in ((stayer_id, first), (returner_id, second), (away_id, third))
            }
            assert await connection_status(api, fleet, away_id) == "online"
            gateway_a.kill()
            killed = time.monotonic()
            for charger in (first, second, third):
                await asyncio.wait_for(charger.socket.wait_closed(), 10)
        assert await stored(cluster.url, "frames", list(answered)) == answered, "every answered MeterValues is kept"
        async with online(gateway_b, fleet, stayer) as first, online(gateway_b, fleet, returner) as second:
            for charger_id, charger in ((stayer_id, first), (returner_id, second)):
                answer = await restart(api, fleet, charger_id, "Hard")
                assert answer.status_code == 200, answer.text
                assert charger.resets == ["Hard"]
            deadline = killed + 2 * ANNOUNCE_INTERVAL
            while await connection_status(api, fleet, away_id) == "online":
                assert time.monotonic() < deadline, "the charger that stayed away still shows online"
                await asyncio.sleep(0.05)
            assert await connection_status(api, fleet, stayer_id) == "online"
            assert await connection_status(api, fleet, returner_id) == "online"
            assert await stored(cluster.url, "gateway", [stayer_id, returner_id, away_id]) == {
                stayer_id: "gateway-b",
                returner_id: "gateway-b",
                away_id: None,
            }

    asyncio.run(scenario())


def test_a_stalled_gateway_takes_its_chargers_back_when_it_resumes(cluster: Cluster) -> None:
    """SIGSTOP of gateway A: its charger shows offline; after SIGCONT, A records it online again and serves it.

    The worker's watch took the silent gateway for gone and told it so (`gateway.lost`); the
    charger's socket stayed open all along, so the gateway that hears this records it online.
    """
    fleet, api, gateway_a = cluster.fleet, cluster.servers["api"], cluster.servers["gateway-a"]
    identity, charger_id = next(iter(fleet.chargers.items()))
    assert gateway_a.process is not None
    process = gateway_a.process

    async def until_status(status: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while await connection_status(api, fleet, charger_id) != status:
            assert time.monotonic() < deadline, f"the charger does not show {status}"
            await asyncio.sleep(0.05)

    async def scenario() -> None:
        async with online(gateway_a, fleet, identity) as charger:
            process.send_signal(signal.SIGSTOP)
            try:
                await until_status("offline", 2 * ANNOUNCE_INTERVAL + 1)
            finally:
                process.send_signal(signal.SIGCONT)
            await until_status("online", 10)
            answer = await restart(api, fleet, charger_id, "Soft")
            assert answer.status_code == 200, answer.text
            assert charger.resets == ["Soft"]
            assert await stored(cluster.url, "gateway", [charger_id]) == {charger_id: "gateway-a"}

    asyncio.run(scenario())
