"""A charger logging in over OCPP-J: its HTTP Basic header and a bare WebSocket upgrade."""

from __future__ import annotations

import base64

from websockets.asyncio.client import connect

from tests.support.killable_server import Fleet, KillableServer


def basic_login(identity: str, password: str) -> dict[str, str]:
    """The `Authorization` header of a charger on security profile 1 or 2 (username = identity)."""
    login = base64.b64encode(f"{identity}:{password}".encode()).decode()
    return {"Authorization": f"Basic {login}"}


async def upgrade_accepted(server: KillableServer, identity: str, password: str) -> bool:
    """The charger's WebSocket upgrade on `server` with its HTTP Basic login opens (else InvalidStatus)."""
    url = f"ws://127.0.0.1:{server.port}/ocpp/{identity}"
    async with connect(url, subprotocols=["ocpp1.6"], additional_headers=basic_login(identity, password)) as ws:  # type: ignore[list-item]
        return ws.subprotocol == "ocpp1.6"


async def charger_let_in(server: KillableServer, fleet: Fleet) -> bool:
    """The fleet's first charger, with its password, is let in on `server`."""
    return await upgrade_accepted(server, next(iter(fleet.chargers)), fleet.password)
