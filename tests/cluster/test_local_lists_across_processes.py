"""Local lists across `voltline serve --role api|gateway|worker` processes on PostgreSQL and NATS (DESIGN "Cluster").

The worker (the control lease's holder) keeps the lists: the charger's boot reaches it from the
gateway as a `smart.events` event, an id-tag change from the api process likewise, and its
SendLocalList calls travel to the gateway as commands; a forced sync asked of the api process
travels to the worker on `local_lists.sync`. Needs `VOLTLINE_TEST_POSTGRES_URL` and
`VOLTLINE_TEST_NATS_URL` (`.ci/run` sets both).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import NATS_URL, needs_cluster
from tests.support.cluster import role_processes
from tests.support.killable_server import seed_fleet
from voltline.simulator import SimulatedCharger
from voltline.simulator.connection import FollowUp, Payload

pytestmark = needs_cluster


class ListCharger(SimulatedCharger):
    """A simulated charger that records the SendLocalList calls it answers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sends: list[Payload] = []

    def _answer(self, action: str, payload: Any) -> tuple[Payload, FollowUp | None]:
        if action == "SendLocalList":
            self.sends.append(payload)
        return super()._answer(action, payload)


async def until(check: Callable[[], Any], what: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def test_the_worker_keeps_the_list_and_a_sync_asked_of_the_api_reaches_it(
    fresh_database: Callable[[str], str], tmp_path: Path
) -> None:
    url = fresh_database("postgres")
    fleet = asyncio.run(seed_fleet(url, 1, 32))
    identity, charger_id = next(iter(fleet.chargers.items()))
    roles = {role: role for role in ("api", "gateway", "worker")}
    with role_processes(url, tmp_path, NATS_URL, roles, {"VOLTLINE_SMART_CONTROL": "false"}) as servers:
        api_url, gateway = servers["api"].base_url, servers["gateway"]

        async def scenario() -> None:
            headers = {"Authorization": f"Bearer {fleet.account.token}", "Accept": "application/json"}
            base = f"/api/v2/teams/{fleet.account.team_id}"
            async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=60) as api:
                assert (await api.post(f"{base}/id-tags", json={"id_tag": "CL-A"})).status_code == 201
                cp = ListCharger(
                    f"ws://127.0.0.1:{gateway.port}/ocpp",
                    identity,
                    connectors=1,
                    password=fleet.password,
                    auto_sessions=False,
                    call_timeout=5.0,
                )
                stop = asyncio.Event()
                task = asyncio.create_task(cp.run(stop))
                try:
                    await until(lambda: len(cp.sends) == 1, "the Full list after the boot")
                    assert cp.sends[0]["updateType"] == "Full"
                    assert (await api.post(f"{base}/id-tags", json={"id_tag": "CL-B"})).status_code == 201
                    await until(lambda: len(cp.sends) == 2, "the differential update")
                    assert cp.sends[1]["updateType"] == "Differential"
                    forced = await api.post(f"{base}/chargers/{charger_id}/local-list/sync")
                    assert forced.status_code == 200, forced.text
                    assert forced.json()["data"]["last_outcome"] == "Accepted"
                    assert [s["updateType"] for s in cp.sends] == ["Full", "Differential", "Full"]
                    assert sorted(cp.local_list.entries) == ["cl-a", "cl-b"]
                finally:
                    stop.set()
                    await asyncio.wait_for(task, 15)

        asyncio.run(scenario())
