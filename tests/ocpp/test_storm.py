"""A reconnect storm: 500 chargers lose their sockets at once and come back, while /readyz stays fast.

The blip is modelled on the network: every charger's TCP connection is cut (no closing
handshake), then every charger reconnects at once and boots again, the worst case of a
gateway restart behind a load balancer. The API must show all of them online again within
30 s, and `/readyz`, sampled continuously from another thread, must answer 200 throughout: it
pings the database on a connection of its own within 1 s, so a storm holding the pool cannot turn
it into a 503. Its latencies are logged, not asserted (benchmarks live in bench/).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import insert
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from tests.conftest import LiveServer
from tests.ocpp.gateway_support import BOOT, dedicated_server, run, wait_for, ws_url
from voltline.domain.credentials import new_pincode
from voltline.services.accounts import Account
from voltline.store.schema import chargers

log = logging.getLogger(__name__)
CHARGERS = 500
BACK_WITHIN = 30.0  # seconds
Check = Callable[[], bool]
Timings = dict[str, float]


def add_chargers(server: LiveServer, account: Account, count: int) -> list[str]:
    """Insert `count` never-seen chargers of the account's team in one statement; their identities."""
    prefix = f"STORM-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC).replace(tzinfo=None)
    rows: list[dict[str, Any]] = [
        {
            "uuid": str(uuid.uuid4()),
            "identity": f"{prefix}-{number:04d}",
            "team_id": account.team_id,
            "pincode": new_pincode(),
            "connection_status": "never_seen",
            "security_profile": 0,
            "license_smart": False,
            "license_pro": False,
            "created_at": now,
            "updated_at": now,
        }
        for number in range(count)
    ]

    async def store() -> None:
        async with server.runtime.db.write() as conn:
            await conn.execute(insert(chargers), rows)

    server.run(store)
    return [str(row["identity"]) for row in rows]


async def boot(server: LiveServer, identity: str) -> ClientConnection:
    """Connect as the charger and have its BootNotification accepted; the open socket."""
    ws = await connect(
        ws_url(server, identity), subprotocols=[Subprotocol("ocpp1.6")], compression=None, open_timeout=BACK_WITHIN
    )
    await ws.send(json.dumps([2, "boot", "BootNotification", BOOT]))
    answer = json.loads(await ws.recv())
    assert answer[:2] == [3, "boot"] and answer[2]["status"] == "Accepted", answer
    return ws


def cut(ws: ClientConnection) -> None:
    """Kill the TCP connection without a closing handshake."""
    assert ws.transport is not None
    ws.transport.abort()


class HealthSampler(threading.Thread):
    """GETs /readyz back to back from its own thread and keeps every latency."""

    def __init__(self, base_url: str) -> None:
        super().__init__(name="readyz-sampler", daemon=True)
        self.base_url = base_url
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.done = threading.Event()

    def run(self) -> None:
        """Sample until `done` is set."""
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            while not self.done.is_set():
                began = time.perf_counter()
                response = client.get("/readyz")
                self.latencies.append(time.perf_counter() - began)
                if response.status_code != 200:
                    self.failures.append(response.text)
                self.done.wait(0.002)

    def percentile(self, share: float) -> float:
        """The latency below which `share` of the samples fall (nearest rank)."""
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def count(api: httpx.Client, account: Account) -> dict[str, int]:
    """How many of the team's chargers the API shows in each connection status."""
    chargers_shown = api.get(f"/api/v2/teams/{account.team_id}/chargers").json()["data"]
    return dict(Counter(charger["connection_status"] for charger in chargers_shown))


@pytest.fixture(scope="module")
def storm_server(
    server: LiveServer, fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server of its own (a fresh database), answering small responses without Nagle's delay.

    LiveServer binds a socket made without IPPROTO_TCP, so asyncio does not set TCP_NODELAY on the
    sockets it accepts and every small response split in two writes waits ~40 ms for a delayed ACK.
    `voltline serve` (uvicorn.run: uvloop, a socket from getaddrinfo) has TCP_NODELAY; so does this
    server, set on the listening socket, which the accepted sockets inherit (Linux).
    """
    with dedicated_server(fresh_database, tmp_path_factory, server.backend) as live:
        assert live._server is not None
        for listening in live._server.servers[0].sockets:
            listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        yield live


async def storm(server: LiveServer, identities: list[str], sampler: HealthSampler, all_online: Check) -> Timings:
    """Connect every charger, cut every socket at once, reconnect all; seconds until booted and online."""
    sockets = await asyncio.gather(*(boot(server, identity) for identity in identities))
    await asyncio.to_thread(wait_for, all_online, BACK_WITHIN)
    sampler.start()
    await asyncio.sleep(0.2)
    began = time.monotonic()
    for ws in sockets:
        cut(ws)
    sockets = await asyncio.gather(*(boot(server, identity) for identity in identities))
    booted = time.monotonic() - began
    await asyncio.to_thread(wait_for, all_online, BACK_WITHIN)
    online = time.monotonic() - began
    await asyncio.sleep(0.5)
    sampler.done.set()
    assert await asyncio.to_thread(all_online), "a charger went offline again after reconnecting"
    await asyncio.gather(*(ws.close() for ws in sockets))
    return {"booted": booted, "online": online}


@pytest.mark.slow
def test_500_chargers_dropped_at_once_are_all_back_online_within_30_s_and_readyz_stays_ready(
    storm_server: LiveServer,
) -> None:
    """A reconnect storm of 500 chargers: all back within 30 s, and /readyz says ready throughout."""
    server = storm_server
    account = server.account()
    identities = add_chargers(server, account, CHARGERS)
    sampler = HealthSampler(server.base_url)
    with server.client(account) as api:
        try:
            timings = run(storm(server, identities, sampler, lambda: count(api, account) == {"online": CHARGERS}))
        finally:
            sampler.done.set()
            sampler.join(10)
        wait_for(lambda: count(api, account) == {"offline": CHARGERS}, BACK_WITHIN)
    p50, p99 = sampler.percentile(0.50), sampler.percentile(0.99)
    summary = {**timings, "readyz_samples": len(sampler.latencies), "readyz_p50": p50, "readyz_p99": p99}
    log.info("storm of %d chargers on %s: %s", CHARGERS, server.backend, summary)
    assert timings["online"] < BACK_WITHIN
    assert sampler.failures == []
    assert len(sampler.latencies) >= 20


async def hold_every_pooled_connection(server: LiveServer, held: threading.Event, release: asyncio.Event) -> None:
    """Check out every connection the reader pool can give (pool size + overflow) until `release` is set."""
    reader = server.runtime.db.reader
    capacity = reader.pool.size() + int(getattr(reader.pool, "_max_overflow", 0))
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(capacity):
            await stack.enter_async_context(reader.connect())
        held.set()
        await release.wait()


def test_readyz_answers_at_once_while_every_pooled_connection_is_busy(storm_server: LiveServer) -> None:
    """/readyz pings on a connection of its own (within 1 s, else 503), so a storm holding the whole pool
    cannot make it report the database unreachable."""
    server = storm_server
    assert server.loop is not None
    held = threading.Event()
    release = asyncio.Event()
    holder = asyncio.run_coroutine_threadsafe(hold_every_pooled_connection(server, held, release), server.loop)
    try:
        assert held.wait(10), "could not check out the whole pool"
        with server.client() as client:
            for _ in range(20):
                response = client.get("/readyz", timeout=5)
                assert response.status_code == 200 and response.json() == {
                    "status": "ok",
                    "database": "ok",
                    "bus": "ok",
                }
    finally:
        server.loop.call_soon_threadsafe(release.set)
        holder.result(10)
