"""`voltline serve --role api|gateway|worker` as real processes on PostgreSQL and NATS (DESIGN "Cluster").

An api process serves the REST API and refuses a WebSocket upgrade on /ocpp; a gateway process
accepts chargers on /ocpp and has no REST API; a worker serves only health, readiness and
metrics. Needs `VOLTLINE_TEST_POSTGRES_URL` and `VOLTLINE_TEST_NATS_URL` (`.ci/run` sets both).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.conftest import NATS_URL, needs_cluster
from tests.support.cluster import role_processes
from tests.support.killable_server import Fleet, KillableServer, seed_fleet

pytestmark = needs_cluster
METRICS_TOKEN = "roles-test-metrics-token"

Roles = tuple[Fleet, dict[str, KillableServer]]


@pytest.fixture
def roles(fresh_database: Callable[[str], str], tmp_path: Path) -> Iterator[Roles]:
    """One api, one gateway and one worker process on a fresh database and NATS subject prefix."""
    url = fresh_database("postgres")
    fleet = asyncio.run(seed_fleet(url, 1, 32))
    roles = {role: role for role in ("api", "gateway", "worker")}
    with role_processes(url, tmp_path, NATS_URL, roles, {"VOLTLINE_METRICS_TOKEN": METRICS_TOKEN}) as servers:
        yield fleet, servers


async def upgrade(server: KillableServer, fleet: Fleet, identity: str) -> int:
    """The status of a WebSocket upgrade to the server's /ocpp (101 when it opened)."""
    secret = base64.b64encode(f"{identity}:{fleet.password}".encode()).decode()
    url = f"ws://127.0.0.1:{server.port}/ocpp/{identity}"
    headers = {"Authorization": f"Basic {secret}"}
    try:
        async with connect(url, subprotocols=["ocpp1.6"], additional_headers=headers, open_timeout=10):  # type: ignore[list-item]
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


def test_each_role_serves_only_its_part(roles: Roles) -> None:
    fleet, servers = roles
    identity = next(iter(fleet.chargers))
    bearer = {"Authorization": f"Bearer {fleet.account.token}", "Accept": "application/json"}
    teams = "/api/v2/teams"
    assert asyncio.run(upgrade(servers["gateway"], fleet, identity)) == 101
    assert asyncio.run(upgrade(servers["api"], fleet, identity)) == 403
    assert asyncio.run(upgrade(servers["worker"], fleet, identity)) == 403
    for role, server in servers.items():
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            assert client.get("/healthz").status_code == 200, role
            assert client.get("/readyz").json() == {"status": "ok", "database": "ok", "bus": "ok"}, role
            metrics = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
            assert metrics.status_code == 200, role
            api = client.get(teams, headers=bearer)
            docs = client.get("/docs")
            if role == "api":
                assert api.status_code == 200 and docs.status_code == 200
            else:
                assert api.status_code == 404 and api.json() == {"message": "Not found."}, role
                assert docs.status_code == 404, role
