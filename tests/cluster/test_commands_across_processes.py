"""Two real `voltline serve` processes on one PostgreSQL database and one NATS server (DESIGN "Cluster").

A charger holds its socket on one process; a command asked of the other process's API travels
over the NATS bus (`charger.<identity>.command`, request/reply) to the process that holds the
socket, and the answer comes back the same way. When the charger reconnects to the other
process, the next command follows it there. Both processes run with smart charging off, so the
only calls a charger gets are the ones the test asks for. Needs `VOLTLINE_TEST_POSTGRES_URL` and
`VOLTLINE_TEST_NATS_URL` (`.ci/run` sets both).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import NATS_URL, needs_cluster
from tests.support.cluster import connection_status, online, restart
from tests.support.killable_server import Fleet, KillableServer, seed_fleet

pytestmark = needs_cluster


Cluster = tuple[Fleet, KillableServer, KillableServer]


@pytest.fixture
def cluster(fresh_database: Callable[[str], str], tmp_path: Path) -> Iterator[Cluster]:
    """Processes A and B on one fresh PostgreSQL database and one NATS subject prefix."""
    url = fresh_database("postgres")
    fleet = asyncio.run(seed_fleet(url, 1, 32))
    settings = {
        "VOLTLINE_BUS_URL": NATS_URL,
        "VOLTLINE_BUS_PREFIX": f"test-{uuid.uuid4().hex[:12]}",
        "VOLTLINE_SMART_CONTROL": "false",
    }
    servers = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        servers.append(KillableServer(url, tmp_path / name, settings))
    try:
        for server in servers:
            server.start()
        yield fleet, servers[0], servers[1]
    finally:
        for server in servers:
            server.stop()


async def until_offline(server: KillableServer, fleet: Fleet, charger_id: int) -> None:
    """Until the API shows the charger offline (the process that held it marked it so)."""
    headers = {"Authorization": f"Bearer {fleet.account.token}", "Accept": "application/json"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=30) as api:
        path = f"/api/v2/teams/{fleet.account.team_id}/chargers/{charger_id}"
        for _ in range(500):
            if (await api.get(path)).json()["data"]["connection_status"] != "online":
                return
            await asyncio.sleep(0.02)
    raise AssertionError("the charger still shows online 10 s after its socket closed")


def test_a_command_reaches_the_charger_on_the_other_process_and_follows_it_after_a_reconnect(cluster: Cluster) -> None:
    """DESIGN "Cluster": commands reach whichever process holds the charger's socket now."""
    fleet, a, b = cluster
    identity, charger_id = next(iter(fleet.chargers.items()))

    async def scenario() -> None:
        async with online(b, fleet, identity) as charger:
            answer = await restart(a, fleet, charger_id, "Hard")
            assert answer.status_code == 200, answer.text
            assert answer.json()["message"] == "Accepted"
            assert charger.resets == ["Hard"], "asked of A, delivered by B, which holds the socket"
        await until_offline(a, fleet, charger_id)  # B has let go of the socket (and of its subject)
        async with online(a, fleet, identity) as charger:
            answer = await restart(b, fleet, charger_id, "Soft")
            assert answer.status_code == 200, answer.text
            assert charger.resets == ["Soft"], "after the reconnect to A, B's API reaches it through A"
        answer = await restart(a, fleet, charger_id, "Soft")
        assert answer.status_code == 409, "offline everywhere: no process answers its subject"

    asyncio.run(scenario())


def test_the_newest_socket_wins_across_processes(cluster: Cluster) -> None:
    """DESIGN "Cluster": a charger that opens a new socket on another process has its older one closed.

    The older process closes its socket (1000) without marking the charger offline, the charger
    stays online, and a command asked of the older process's API reaches the new socket.
    """
    fleet, a, b = cluster
    identity, charger_id = next(iter(fleet.chargers.items()))

    async def scenario() -> None:
        async with online(b, fleet, identity) as old, online(a, fleet, identity) as new:
            await asyncio.wait_for(old._connection.wait_closed(), 10)
            assert old._connection.close_code == 1000
            answer = await restart(b, fleet, charger_id, "Hard")
            assert answer.status_code == 200, answer.text
            assert new.resets == ["Hard"] and old.resets == []
            assert await connection_status(a, fleet, charger_id) == "online"

    asyncio.run(scenario())
