"""Gateway presence (DESIGN "Cluster") on a real database and, for the watch, a real NATS server.

Each charger row names the gateway holding its socket and that socket's token. An old socket
closing after a newer one marked the charger online writes nothing; a gateway watch marks the
chargers of a gateway that went silent offline; a gateway starting on NATS marks offline only
the chargers named against its own node id. Two `Runtime`s on one database and one NATS prefix
stand for two processes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import select

from tests.clocked import SteppedClock
from tests.conftest import BACKENDS, NATS_URL, needs_nats
from voltline.bus import Bus, MemoryBus, NatsBus
from voltline.clock import Clock
from voltline.domain.credentials import new_pincode
from voltline.domain.ids import ChargerId
from voltline.ocpp.gateway import Gateway
from voltline.services import gateways, presence
from voltline.services.runtime import Runtime
from voltline.settings import Settings
from voltline.store import chargers as store_chargers
from voltline.store.engine import Database
from voltline.store.schema import chargers

INTERVAL = 2.0  # the announce interval; the stepped clock makes waiting for it instant


@asynccontextmanager
async def process(url: str, bus: Bus, node_id: str, clock: Clock | None = None) -> AsyncIterator[Runtime]:
    """One process's runtime: its own database engine and bus connection, named `node_id`."""
    settings = Settings(database_url=url, gateway_announce_interval=INTERVAL)
    runtime = Runtime(
        settings=settings,
        db=Database(url),
        secret_key="presence-test",
        clock=clock or Clock(),
        bus=bus,
        node_id=node_id,
    )
    await bus.start()
    try:
        yield runtime
    finally:
        await bus.close()
        await runtime.db.close()


def nats_bus(prefix: str) -> NatsBus:
    return NatsBus(NATS_URL, prefix)


async def add_chargers(url: str, count: int) -> list[ChargerId]:
    db = Database(url)
    try:
        async with db.write() as conn:
            rows = [
                await store_chargers.create_charger(conn, f"GW-{uuid.uuid4().hex[:8]}", new_pincode(), {})
                for _ in range(count)
            ]
        return [ChargerId(row["id"]) for row in rows]
    finally:
        await db.close()


async def rows(runtime: Runtime, ids: list[ChargerId]) -> list[tuple[Any, ...]]:
    """(connection_status, gateway_id) of each charger, in the order given."""
    query = select(chargers.c.id, chargers.c.connection_status, chargers.c.gateway_id).where(chargers.c.id.in_(ids))
    async with runtime.db.read() as conn:
        found = {row.id: (row.connection_status, row.gateway_id) for row in await conn.execute(query)}
    return [found[charger_id] for charger_id in ids]


def socket_of(charger_id: ChargerId, token: str) -> presence.Socket:
    return presence.Socket(charger_id, None, f"charger-{charger_id}", "1.6", token)


def token(ns: int) -> str:
    """A connection token as `Connection` makes them: opened nanoseconds (20 digits), then random."""
    return f"{ns:020d}-{uuid.uuid4().hex}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_old_socket_closing_after_the_new_one_came_online_leaves_the_charger_online(
    fresh_database: Callable[[str], str], backend: str
) -> None:
    """The old socket on gateway A closes after the new one on gateway B marked the charger online."""
    url = fresh_database(backend)

    async def scenario() -> None:
        (charger_id,) = await add_chargers(url, 1)
        shared = MemoryBus()
        async with process(url, shared, "gateway-a") as a, process(url, shared, "gateway-b") as b:
            old, new = socket_of(charger_id, token(1_000)), socket_of(charger_id, token(2_000))
            assert await presence.mark_connected(a, old, replacing=False)
            assert await presence.mark_connected(b, new, replacing=False)
            await presence.mark_disconnected(a, old, "the socket closed", announce=True, release=True)
            assert await rows(b, [charger_id]) == [("online", "gateway-b")]
            # The old socket's "online" committing late does not take the charger back either.
            assert not await presence.mark_connected(a, old, replacing=False)
            assert await rows(b, [charger_id]) == [("online", "gateway-b")]
            await presence.mark_disconnected(b, new, "the socket closed", announce=True, release=True)
            assert await rows(b, [charger_id]) == [("offline", None)]

    asyncio.run(scenario())


@needs_nats
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_chargers_of_a_gateway_that_went_silent_are_marked_offline_within_two_intervals(
    fresh_database: Callable[[str], str], backend: str
) -> None:
    url = fresh_database(backend)

    async def scenario() -> None:
        ids = await add_chargers(url, 4)
        prefix = f"test-{uuid.uuid4().hex[:12]}"
        clock = SteppedClock()
        async with (
            process(url, nats_bus(prefix), "gateway-a") as a,
            process(url, nats_bus(prefix), "gateway-b") as b,
            process(url, nats_bus(prefix), "worker-1", clock) as worker,
            process(url, nats_bus(prefix), "worker-2", clock) as other_worker,
        ):
            for n, charger_id in enumerate(ids):
                await presence.mark_connected(a if n < 2 else b, socket_of(charger_id, token(n)), replacing=False)
            lost: list[str | None] = []
            heard = asyncio.Event()

            async def on_lost(_subject: str, data: bytes) -> None:
                lost.append(gateways.decode_gateway(data))
                heard.set()

            await a.bus.listen(gateways.LOST_SUBJECT, on_lost)
            watches = [gateways.GatewayWatch(worker), gateways.GatewayWatch(other_worker)]
            for watch in watches:
                await watch.start()
            try:
                for step in range(4):  # b announces every interval; a only at the first
                    announcing = ["gateway-a", "gateway-b"] if step == 0 else ["gateway-b"]
                    now = clock.monotonic()
                    for node_id in announcing:
                        await b.bus.publish(gateways.ALIVE_SUBJECT, gateways.encode_gateway(node_id))
                    await until(heard_since(watches, announcing, now))
                    for watch in watches:
                        await watch.check()
                    expected_a = "online" if step < 2 else "offline"  # a was last heard at step 0
                    # The watches' own loops check too (the clock moved): their writes may land a moment later.
                    statuses = await settled(a, ids, [expected_a] * 2 + ["online"] * 2)
                    assert statuses == [expected_a] * 2 + ["online"] * 2, step
                    await clock.advance(INTERVAL)
                assert await rows(a, ids) == [("offline", None)] * 2 + [("online", "gateway-b")] * 2
                await asyncio.wait_for(heard.wait(), 5)
                assert lost == ["gateway-a"], "told once, though two watches saw it"
            finally:
                for watch in watches:
                    await watch.stop()

    asyncio.run(scenario())


@needs_nats
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_watch_marks_offline_the_chargers_of_a_gateway_it_never_heard_once_it_listened_long_enough(
    fresh_database: Callable[[str], str], backend: str
) -> None:
    """A gateway that died before the watch started: the store names it, nobody announces it."""
    url = fresh_database(backend)

    async def scenario() -> None:
        ids = await add_chargers(url, 2)
        prefix = f"test-{uuid.uuid4().hex[:12]}"
        clock = SteppedClock()
        async with process(url, nats_bus(prefix), "gone") as gone, process(url, nats_bus(prefix), "w", clock) as w:
            for charger_id in ids:
                await presence.mark_connected(gone, socket_of(charger_id, token(1)), replacing=False)
            watch = gateways.GatewayWatch(w)
            await watch.start()
            try:
                await clock.advance(INTERVAL)
                await watch.check()
                assert [status for status, _ in await rows(w, ids)] == ["online"] * 2, "not yet heard every gateway"
                await clock.advance(INTERVAL)
                await watch.check()  # or its own loop, a moment later
                assert await settled(w, ids, ["offline"] * 2) == ["offline"] * 2
                assert await rows(w, ids) == [("offline", None)] * 2
            finally:
                await watch.stop()

    asyncio.run(scenario())


@pytest.mark.parametrize("bus_kind", ["memory", pytest.param("nats", marks=needs_nats)])
def test_a_starting_gateway_marks_offline_only_what_it_held_itself_unless_it_is_the_only_one(
    fresh_database: Callable[[str], str], bus_kind: str
) -> None:
    """On NATS a gateway restarting under its node name takes back its own chargers, not the others'."""
    url = fresh_database("postgres" if "postgres" in BACKENDS else "sqlite")

    async def scenario() -> None:
        mine, theirs = await add_chargers(url, 2)
        prefix = f"test-{uuid.uuid4().hex[:12]}"
        shared = MemoryBus()

        def bus() -> Bus:
            return shared if bus_kind == "memory" else nats_bus(prefix)

        async with process(url, bus(), "node-1") as before, process(url, bus(), "node-2") as other:
            await presence.mark_connected(before, socket_of(mine, token(1)), replacing=False)
            await presence.mark_connected(other, socket_of(theirs, token(2)), replacing=False)
        async with process(url, bus(), "node-1") as again:
            gateway = Gateway(again, again.writer)
            await gateway.start()
            try:
                left = await rows(again, [mine, theirs])
            finally:
                await gateway.stop()
        if bus_kind == "memory":
            assert left == [("offline", None), ("offline", None)], "the only gateway: nothing is connected"
        else:
            assert left == [("offline", None), ("online", "node-2")]

    asyncio.run(scenario())


async def settled(runtime: Runtime, ids: list[ChargerId], expected: list[str], timeout: float = 5.0) -> list[str]:
    """The chargers' statuses once they are `expected`, or as they are after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (statuses := [status for status, _ in await rows(runtime, ids)]) != expected:
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.01)
    return statuses


def heard_since(watches: list[gateways.GatewayWatch], nodes: list[str], since: float) -> Callable[[], bool]:
    """Every watch heard every node's announcement at `since` or later."""
    return lambda: all(watch.heard.get(node, -1.0) >= since for watch in watches for node in nodes)


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Until `check()` holds (a message on the bus arrived), at most `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)
