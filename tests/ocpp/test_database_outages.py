"""DESIGN "Durability": when the database cannot take writes, chargers get no false answers.

Each test runs a server of its own with a short hold (`VOLTLINE_OCPP_HOLD_SECONDS`) and breaks
its database for real: PostgreSQL connections terminated by the server (pg_terminate_backend),
PostgreSQL unreachable behind a TCP proxy the test cuts (the shared server keeps running),
SQLite full (`PRAGMA max_page_count`, SQLITE_FULL) and SQLite read-only (the files made
immutable with chattr; root ignores file modes). An answer is held, then the socket closes
with 1011 — never a CALLERROR; `/readyz` answers 503 meanwhile; once the database is back
everything recovers by itself, and the unanswered frame, replayed, is stored once.
Outages are real time, so these tests stay short.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import POSTGRES_ADMIN_URL, LiveServer, server_settings
from tests.ocpp.gateway_support import (
    BOOT,
    Raw,
    charger_row,
    dedicated_server,
    frame_rows,
    meter_value,
    open_charger,
    run,
    team_charger,
    transaction_rows,
)
from tests.support.tcp_proxy import TcpProxy

HOLD = 1.0  # seconds an answer is held before the socket closes
CLOSED_WITHIN = HOLD + 8.0  # the hold, the expiry check and a busy machine
BACK_WITHIN = 15.0  # seconds for the writer and the pool to find the database again
START = {"connectorId": 1, "idTag": "04A2B3C4D55E80", "meterStart": 1000, "timestamp": "2025-03-31T12:00:00Z"}

needs_postgres = pytest.mark.skipif(not POSTGRES_ADMIN_URL, reason="needs VOLTLINE_TEST_POSTGRES_URL")


def readiness(server: LiveServer) -> int:
    """The status code of `/readyz`."""
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        return client.get("/readyz").status_code


def wait_until_ready(server: LiveServer) -> float:
    """Poll `/readyz` until 200; the seconds it took."""
    began = time.monotonic()
    while readiness(server) != 200:
        assert time.monotonic() - began < BACK_WITHIN, "/readyz did not come back"
        time.sleep(0.1)
    return time.monotonic() - began


async def held_then_closed(peer: Raw, message_id: str) -> int:
    """Wait for the answer to a CALL and return the close code instead; fail on any answer."""
    try:
        frame = await peer.answer(message_id, timeout=CLOSED_WITHIN)
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, "closed without a close frame"
        return int(closed.rcvd.code)
    raise AssertionError(f"answered while the database could not take writes: {frame}")


def outage(
    server: LiveServer,
    charger: dict[str, Any],
    break_it: Callable[[], None],
    mend: Callable[[], None],
    newcomer: dict[str, Any] | None = None,
) -> None:
    """One frame stored; the database broken; the next frame held, then 1011; mended; replayed; stored once.

    A `newcomer` connects while the database is broken: its connection cannot be recorded, 1011.
    """
    identity = charger["identity"]
    big = [meter_value(1, 1100, extra=300)]  # one frame of about 10 KB: it needs new pages

    async def before_and_during() -> tuple[dict[str, Any], int, int]:
        async with open_charger(server, identity) as ws:
            peer = Raw(ws)
            await peer.result("BootNotification", BOOT)
            first = await peer.result("MeterValues", {"connectorId": 1, "meterValue": [meter_value(0, 1000)]})
            await asyncio.to_thread(break_it)
            await ws.send(json.dumps([2, "held", "MeterValues", {"connectorId": 1, "meterValue": big}]))
            code = await held_then_closed(peer, "held")
            if newcomer is not None:
                assert await refused_at_connect(newcomer["identity"]) == 1011
            return first, code, await asyncio.to_thread(readiness, server)

    async def refused_at_connect(other: str) -> int:
        async with open_charger(server, other) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), CLOSED_WITHIN)
            assert closed.value.rcvd is not None
            return int(closed.value.rcvd.code)

    async def replay() -> dict[str, Any]:
        async with open_charger(server, identity) as ws:
            peer = Raw(ws)
            await peer.result("BootNotification", BOOT)
            return await peer.result("MeterValues", {"connectorId": 1, "meterValue": big})

    first, code, ready_during = run(before_and_during())
    assert (first, code, ready_during) == ({}, 1011, 503)
    mend()
    wait_until_ready(server)
    assert run(replay()) == {}
    stored = frame_rows(server, charger_row(server, identity)["id"])
    assert len(stored) == 2  # the held frame, written once the database came back, and not again for the replay


@pytest.fixture
def sqlite_server(
    fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A SQLite server of its own with a short hold."""
    with dedicated_server(fresh_database, tmp_path_factory, "sqlite", ocpp_hold_seconds=HOLD) as live:
        yield live


def test_a_full_sqlite_database_holds_the_answer_closes_1011_and_recovers(sqlite_server: LiveServer) -> None:
    """SQLITE_FULL (max_page_count on the writing connections): no false answer, nothing lost once there is room."""
    server = sqlite_server
    account = server.account()
    with server.client(account) as api:
        charger = team_charger(api, account)

    async def limit_on(conn: AsyncConnection, pages: int | None) -> None:
        count = int((await conn.exec_driver_sql("PRAGMA page_count")).scalar_one())
        await conn.exec_driver_sql(f"PRAGMA max_page_count={pages or count}")

    async def fill_free_pages(conn: AsyncConnection) -> None:
        # Migrations that rebuild tables (batch_alter_table) leave pages on the freelist, and a write
        # that fits in them passes any max_page_count: use them up first, so the file must grow.
        free = int((await conn.exec_driver_sql("PRAGMA freelist_count")).scalar_one())
        size = int((await conn.exec_driver_sql("PRAGMA page_size")).scalar_one())
        await conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS outage_filler (x BLOB)")
        if free:
            await conn.exec_driver_sql(f"INSERT INTO outage_filler VALUES (zeroblob({free * size}))")

    async def limit(pages: int | None) -> None:  # on both writing connections (store/engine.py)
        async with server.runtime.db.write() as conn:
            if pages is None:
                await fill_free_pages(conn)
            await limit_on(conn, pages)
        await server.runtime.db.write_batch(lambda conn: limit_on(conn, pages))

    outage(server, charger, lambda: server.run(lambda: limit(None)), lambda: server.run(lambda: limit(2**31)))


def test_a_read_only_sqlite_file_holds_the_answer_closes_1011_and_recovers(sqlite_server: LiveServer) -> None:
    """Writes to the database file and its WAL fail (immutable files: EPERM even for root); they work again after."""
    server = sqlite_server
    database = make_url(server.settings.effective_database_url).database
    assert database is not None
    files = [Path(database), Path(database + "-wal")]  # not the -shm: it is memory-mapped (SIGBUS)
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed: cannot make the database read-only for root")
    probe = Path(database).with_name("immutable-probe")
    probe.touch()
    made = subprocess.run(["chattr", "+i", str(probe)], capture_output=True, check=False)
    subprocess.run(["chattr", "-i", str(probe)], capture_output=True, check=False)
    probe.unlink()
    if made.returncode != 0:
        pytest.skip(f"chattr +i does not work here ({made.stderr.decode().strip()})")
    account = server.account()
    with server.client(account) as api:
        charger, newcomer = team_charger(api, account), team_charger(api, account)

    def chattr(flag: str) -> None:
        subprocess.run(["chattr", flag, *map(str, files)], check=True)

    try:
        outage(server, charger, lambda: chattr("+i"), lambda: chattr("-i"), newcomer)
    finally:
        subprocess.run(["chattr", "-i", *map(str, files)], check=False)


@needs_postgres
def test_an_unreachable_postgres_holds_answers_closes_1011_and_recovers(
    fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """PostgreSQL unreachable (a proxy in front of it cut): MeterValues and StartTransaction are held, then 1011;
    after the proxy listens again the pool reconnects, the held frame is written, and replays are stored once."""
    url = make_url(fresh_database("postgres"))
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.restore()
    through = url.set(port=proxy.port).render_as_string(hide_password=False)
    server = LiveServer(
        server_settings(through, str(tmp_path_factory.mktemp("data")), ocpp_hold_seconds=HOLD), "postgres"
    )
    server.start()
    try:
        account = server.account()
        with server.client(account) as api:
            metering, starting = team_charger(api, account), team_charger(api, account)
        start_held = run(start_while_cut(server, starting["identity"], proxy))
        outage(server, metering, proxy.cut, proxy.restore)
        assert start_held == 1011
        replayed = run(start_again(server, starting["identity"]))
        assert [row["id"] for row in transaction_rows(server, charger_row(server, starting["identity"])["id"])] == [
            replayed
        ]
    finally:
        server.stop()
        proxy.close()


@needs_postgres
def test_an_upgrade_while_postgres_is_unreachable_is_a_503_and_connects_once_it_is_back(
    fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """DESIGN "Durability": a charger connecting while its row cannot be read gets a 503 to retry later
    (never a 500), and the same upgrade succeeds once the database answers again."""
    url = make_url(fresh_database("postgres"))
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.restore()
    through = url.set(port=proxy.port).render_as_string(hide_password=False)
    server = LiveServer(server_settings(through, str(tmp_path_factory.mktemp("data"))), "postgres")
    server.start()
    try:
        account = server.account()
        with server.client(account) as api:
            identity = team_charger(api, account)["identity"]
        proxy.cut()
        try:
            with pytest.raises(InvalidStatus) as refused:
                run(connect_once(server, identity))
        finally:
            proxy.restore()
        response = refused.value.response
        assert response.status_code == 503
        assert json.loads(response.body or b"{}") == {"message": "The database is unavailable; retry later."}
        assert run(connect_once(server, identity)) == "Accepted"
    finally:
        server.stop()
        proxy.close()


async def connect_once(server: LiveServer, identity: str) -> str:
    """Open the charger's socket and boot: the boot status."""
    async with open_charger(server, identity) as ws:
        return str((await Raw(ws).result("BootNotification", BOOT))["status"])


async def start_while_cut(server: LiveServer, identity: str, proxy: TcpProxy) -> int:
    """Boot, cut the proxy, send StartTransaction: the close code it gets instead of an answer."""
    async with open_charger(server, identity) as ws:
        peer = Raw(ws)
        await peer.result("BootNotification", BOOT)
        await asyncio.to_thread(proxy.cut)
        await ws.send(json.dumps([2, "start", "StartTransaction", START]))
        try:
            return await held_then_closed(peer, "start")
        finally:
            await asyncio.to_thread(proxy.restore)


async def start_again(server: LiveServer, identity: str) -> int:
    """The replayed StartTransaction's transaction id."""
    async with open_charger(server, identity) as ws:
        peer = Raw(ws)
        await peer.result("BootNotification", BOOT)
        return int((await peer.result("StartTransaction", START))["transactionId"])


@needs_postgres
def test_terminated_postgres_connections_lose_nothing_and_answer_every_frame(
    fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """pg_terminate_backend of every connection of the server's database, five times while three chargers send:
    every MeterValues is answered with a CALLRESULT and stored once; /readyz is 200 afterwards."""
    with dedicated_server(fresh_database, tmp_path_factory, "postgres") as server:
        account = server.account()
        with server.client(account) as api:
            chargers = [team_charger(api, account) for _ in range(3)]
        database = make_url(server.settings.effective_database_url).database
        answers = run(send_while_terminating(server, [c["identity"] for c in chargers], str(database)))
        assert answers["frames"] == [{}] * 120
        assert answers["terminated"] > 0
        for charger in chargers:
            assert len(frame_rows(server, charger_row(server, charger["identity"])["id"])) == 40
        assert readiness(server) == 200


async def send_while_terminating(server: LiveServer, identities: list[str], database: str) -> dict[str, Any]:
    """40 MeterValues per charger, while another task terminates the database's connections five times."""

    async def send(peer: Raw) -> list[dict[str, Any]]:
        return [
            await peer.result("MeterValues", {"connectorId": 1, "meterValue": [meter_value(i, 1000 + i)]})
            for i in range(40)
        ]

    async def terminate() -> int:
        admin = await asyncpg.connect(make_url(POSTGRES_ADMIN_URL).render_as_string(hide_password=False))
        killed = 0
        try:
            for _ in range(5):
                await asyncio.sleep(0.1)
                sql = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1"
                killed += int(await admin.fetchval(sql, database))
        finally:
            await admin.close()
        return killed

    async with contextlib.AsyncExitStack() as stack:
        peers = [Raw(await stack.enter_async_context(open_charger(server, identity))) for identity in identities]
        for peer in peers:
            await peer.result("BootNotification", BOOT)
        *sent, killed = await asyncio.gather(*(send(peer) for peer in peers), terminate())
    return {"frames": [answer for answers in sent for answer in answers], "terminated": killed}
