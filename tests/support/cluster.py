"""Chargers and API calls for the multi-process tests (tests/cluster): real `voltline serve` processes.

A charger is the `ocpp` library's ChargePoint over a real WebSocket (HTTP Basic, security
profile 1, as `seed_fleet` makes them); the API is asked over HTTP with the fleet's token.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.client import connect

from tests.support.killable_server import Fleet, KillableServer


class ResettableCharger(ChargePoint):  # type: ignore[misc]
    """Boots and accepts every Reset, noting which process asked (by the socket it came in on)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.resets: list[str] = []
        self.socket: Any = None  # the client side of its WebSocket

    @on(Action.reset)
    def on_reset(self, **payload: Any) -> Any:
        self.resets.append(str(payload["type"]))
        return call_result.Reset(status="Accepted")


@asynccontextmanager
async def online(server: KillableServer, fleet: Fleet, identity: str) -> AsyncIterator[ResettableCharger]:
    """The charger connected to `server` (HTTP Basic, security profile 1) and booted."""
    secret = base64.b64encode(f"{identity}:{fleet.password}".encode()).decode()
    url = f"ws://127.0.0.1:{server.port}/ocpp/{identity}"
    async with connect(url, subprotocols=["ocpp1.6"], additional_headers={"Authorization": f"Basic {secret}"}) as ws:  # type: ignore[list-item]
        charger = ResettableCharger(identity, ws, response_timeout=10)
        charger.socket = ws
        task = asyncio.create_task(charger.start())
        booted = await charger.call(call.BootNotification(charge_point_model="Cluster", charge_point_vendor="test"))
        assert booted.status == "Accepted"
        try:
            yield charger
        finally:
            task.cancel()


async def restart(server: KillableServer, fleet: Fleet, charger_id: int, kind: str) -> httpx.Response:
    """`POST .../commands/restart` on the server's API."""
    headers = {"Authorization": f"Bearer {fleet.account.token}", "Accept": "application/json"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=30) as api:
        path = f"/api/v2/teams/{fleet.account.team_id}/chargers/{charger_id}/commands/restart"
        return await api.post(path, json={"type": kind})


async def connection_status(server: KillableServer, fleet: Fleet, charger_id: int) -> str:
    """The charger's `connection_status` as the server's API shows it."""
    headers = {"Authorization": f"Bearer {fleet.account.token}", "Accept": "application/json"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=30) as api:
        path = f"/api/v2/teams/{fleet.account.team_id}/chargers/{charger_id}"
        return str((await api.get(path)).json()["data"]["connection_status"])


@contextmanager
def role_processes(
    url: str, data_dir: Path, bus_url: str, roles: Mapping[str, str], settings: Mapping[str, str]
) -> Iterator[dict[str, KillableServer]]:
    """`voltline serve --role` processes by name (also their node name), on one database and NATS prefix; started."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    servers: dict[str, KillableServer] = {}
    for name, role in roles.items():
        (data_dir / name).mkdir()
        environment = {
            "VOLTLINE_BUS_URL": bus_url,
            "VOLTLINE_BUS_PREFIX": prefix,
            "VOLTLINE_ROLE": role,
            "VOLTLINE_NODE_NAME": name,
            **settings,
        }
        servers[name] = KillableServer(url, data_dir / name, environment)
    try:
        for server in servers.values():
            server.start()
        yield servers
    finally:
        for server in servers.values():
            server.stop()
