"""An independent OCPP 1.6 charger (the `ocpp` package's ChargePoint) on a live server, and an API client beside it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from ocpp.v16 import ChargePoint, call
from websockets.asyncio.client import connect

from tests.conftest import LiveServer
from tests.ocpp.gateway_support import ws_url
from voltline.services.accounts import Account


class SilentCharger(ChargePoint):  # type: ignore[misc]
    """Boots, then never answers a CSMS call (no handlers, and calls are swallowed)."""

    async def route_message(self, raw_msg: str) -> None:
        if raw_msg.lstrip().startswith("[2"):
            return
        await super().route_message(raw_msg)


def now() -> str:
    """The current time as a charger writes it."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@asynccontextmanager
async def connected(server: LiveServer, identity: str, cls: type[ChargePoint]) -> AsyncIterator[Any]:
    """A booted charger of class `cls` connected to the server while the block runs."""
    async with connect(ws_url(server, identity), subprotocols=["ocpp1.6"], compression=None) as ws:  # type: ignore[list-item]
        charger = cls(identity, ws, response_timeout=10)
        task = asyncio.create_task(charger.start())
        await charger.call(call.BootNotification(charge_point_model="Interop", charge_point_vendor="ocpp-py"))
        try:
            yield charger
        finally:
            task.cancel()


def scenario(server: LiveServer, account: Account, body: Callable[[httpx.AsyncClient], Any]) -> Any:
    """Run `body` with an async API client authenticated as the account (chargers and API calls interleave)."""

    async def run() -> Any:
        headers = {"Authorization": f"Bearer {account.token}", "Accept": "application/json"}
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=30) as api:
            return await body(api)

    return asyncio.run(run())
