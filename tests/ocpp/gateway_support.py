"""Peers and helpers for the gateway tests: raw WebSocket chargers, store look-ups, dedicated servers.

The charger side is never our own code: raw `websockets` clients, or the `ocpp` package's ChargePoint.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import LiveServer, server_settings
from voltline.bus.events import SMART_EVENTS, decode_event
from voltline.services.accounts import Account
from voltline.store.schema import chargers, connectors, meter_frames, ocpp_messages, transactions

BOOT = {"chargePointVendor": "Alfen BV", "chargePointModel": "NG910-60023"}
TIMESTAMP = "2025-03-31T12:18:52Z"


def ws_url(server: LiveServer, identity: str) -> str:
    """The OCPP endpoint of the live server for an identity."""
    return server.base_url.replace("http://", "ws://") + "/ocpp/" + identity


def basic_auth(identity: str, password: str) -> dict[str, str]:
    """An HTTP Basic Authorization header (OCPP security profile 1)."""
    token = base64.b64encode(f"{identity}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def unique_identity(prefix: str = "CP") -> str:
    """A charger identity no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def charger_security(api: httpx.Client, account: Account, charger: int | str, **body: Any) -> dict[str, Any]:
    """PUT .../chargers/{charger}/ocpp with the body (security_profile, password, generate_password, lenient)."""
    response = api.put(f"/api/v2/teams/{account.team_id}/chargers/{charger}/ocpp", json=body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def identity_only(api: httpx.Client, team: Account | str, charger: dict[str, Any]) -> dict[str, Any]:
    """Put a charger made through the API on security profile 0, so a test's peer connects without a password.

    `team`: the account, or the team's API path (`/api/v2/teams/{team}`).
    """
    base = team if isinstance(team, str) else f"/api/v2/teams/{team.team_id}"
    response = api.put(f"{base}/chargers/{charger['id']}/ocpp", json={"security_profile": 0})
    assert response.status_code == 200, response.text
    return charger


def team_charger(api: httpx.Client, account: Account, *, security_profile: int | None = 0) -> dict[str, Any]:
    """A charger of the account's team, made through the API; identity only (profile 0) unless told otherwise.

    `security_profile=None` leaves it as the API made it: profile 1 without a password.
    """
    response = api.post(f"/api/v2/teams/{account.team_id}/chargers", json={"identity": unique_identity()})
    assert response.status_code == 201, response.text
    charger: dict[str, Any] = response.json()["data"]
    if security_profile is not None:
        charger_security(api, account, charger["id"], security_profile=security_profile)
    return charger


def get_charger(api: httpx.Client, account: Account, charger_id: int) -> dict[str, Any]:
    """The single-charger GET of the REST API."""
    response = api.get(f"/api/v2/teams/{account.team_id}/chargers/{charger_id}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


@asynccontextmanager
async def open_charger(
    server: LiveServer, identity: str, *, subprotocols: tuple[str, ...] = ("ocpp1.6",), **options: Any
) -> AsyncIterator[ClientConnection]:
    """A raw WebSocket connection as a charger."""
    async with connect(
        ws_url(server, identity),
        subprotocols=list(subprotocols),
        compression=None,
        **options,  # type: ignore[arg-type]
    ) as ws:
        yield ws


@asynccontextmanager
async def booted_charger(server: LiveServer, identity: str, **options: Any) -> AsyncIterator[ClientConnection]:
    """A raw WebSocket connection as a charger whose BootNotification was Accepted.

    DESIGN "Load management": nothing is sent to a charger before that, so tests that expect
    calls from Voltline boot first.
    """
    async with open_charger(server, identity, **options) as ws:
        await ws.send(json.dumps([2, "boot-0", "BootNotification", BOOT]))
        frame = await Raw(ws).answer("boot-0")
        assert frame[0] == 3 and frame[2]["status"] == "Accepted", frame
        yield ws


class Raw:
    """A raw OCPP-J peer: sends frames, reads answers by message id."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.counter = 0

    async def call(self, action: str, payload: dict[str, Any]) -> list[Any]:
        """Send a CALL and return the answer frame (CALLRESULT or CALLERROR) with its id."""
        self.counter += 1
        message_id = f"m{self.counter}"
        await self.ws.send(json.dumps([2, message_id, action, payload]))
        return await self.answer(message_id)

    async def answer(self, message_id: str, timeout: float = 5) -> list[Any]:
        """The next frame answering `message_id` (others are skipped)."""
        async with asyncio.timeout(timeout):
            while True:
                frame = json.loads(await self.ws.recv())
                if frame[1] == message_id and frame[0] in (3, 4):
                    return list(frame)

    async def result(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The CALLRESULT payload of a CALL (fails on a CALLERROR)."""
        frame = await self.call(action, payload)
        assert frame[0] == 3, frame
        result: dict[str, Any] = frame[2]
        return result


def run(coro: Any) -> Any:
    """Run a scenario on a fresh event loop in the test thread (the server has its own)."""
    return asyncio.run(coro)


def rows(server: LiveServer, query: Any) -> list[dict[str, Any]]:
    """Rows of a query on the server's database, after the batched writer flushed."""

    async def read() -> list[dict[str, Any]]:
        await server.runtime.writer.flush()
        async with server.runtime.db.read() as conn:
            return [dict(row) for row in (await conn.execute(query)).mappings().all()]

    return server.run(read)


def charger_row(server: LiveServer, identity: str) -> dict[str, Any]:
    """The stored charger with this identity."""
    return rows(server, select(chargers).where(chargers.c.identity == identity))[0]


def connector_rows(server: LiveServer, charger_id: int) -> list[dict[str, Any]]:
    """The charger's connectors by number."""
    query = select(connectors).where(connectors.c.charger_id == charger_id).order_by(connectors.c.connector_id)
    return rows(server, query)


def transaction_rows(server: LiveServer, charger_id: int) -> list[dict[str, Any]]:
    """The charger's transactions, oldest first."""
    return rows(server, select(transactions).where(transactions.c.charger_id == charger_id).order_by(transactions.c.id))


def frame_rows(server: LiveServer, charger_id: int) -> list[dict[str, Any]]:
    """The charger's stored meter frames, in arrival order."""
    return rows(server, select(meter_frames).where(meter_frames.c.charger_id == charger_id).order_by(meter_frames.c.id))


def log_rows(server: LiveServer, charger_id: int) -> list[dict[str, Any]]:
    """The charger's OCPP message log, in order."""
    query = select(ocpp_messages).where(ocpp_messages.c.charger_id == charger_id).order_by(ocpp_messages.c.id)
    return rows(server, query)


def wait_for(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll until `check()` holds (for state the server records after a socket event)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@contextmanager
def dedicated_server(
    fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory, backend: str, **settings: Any
) -> Iterator[LiveServer]:
    """A live server of its own with special settings, on the given backend."""
    url = fresh_database(backend)
    live = LiveServer(server_settings(url, str(tmp_path_factory.mktemp("data")), **settings), backend)
    live.start()
    try:
        yield live
    finally:
        live.stop()


@contextmanager
def smart_events(live: LiveServer) -> Iterator[list[dict[str, Any]]]:
    """Every smart-charging event the server publishes while the block runs, as a bus listener sees it."""
    seen: list[dict[str, Any]] = []

    async def record(_subject: str, data: bytes) -> None:
        seen.append(decode_event(data))

    subscription = live.run(lambda: live.runtime.bus.listen(SMART_EVENTS, record))
    try:
        yield seen
    finally:
        live.run(subscription.unsubscribe)


def meter_value(minute: int, wh: int, amps: str = "16.0", extra: int = 0) -> dict[str, Any]:
    """One MeterValue element `minute` minutes after 2025-03-31 12:00 UTC: the register, a current, and
    `extra` more voltage samples (a large frame)."""
    stamp = (datetime(2025, 3, 31, 12) + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")
    sampled = [
        {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
        {"value": amps, "measurand": "Current.Import", "phase": "L1", "unit": "A"},
        *({"value": f"{230 + i / 100:.2f}", "measurand": "Voltage", "phase": "L1-N"} for i in range(extra)),
    ]
    return {"timestamp": stamp, "sampledValue": sampled}
