"""The control lease (DESIGN "Cluster"): one holder, an epoch that rises at every takeover, stepping down.

SQLite holds the lease locally from start to stop (one box, one `serve`); PostgreSQL holds an
advisory lock on a session of its own, which a dead or stalled holder loses (the tests end that
session with `pg_terminate_backend`, as `idle_session_timeout` ends a SIGSTOPped holder's).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.conftest import BACKENDS, server_settings
from tests.support.tcp_proxy import TcpProxy
from voltline.bus import MemoryBus
from voltline.services.commands import Commands, command_subject, encode_reply
from voltline.services.lease import (
    EPOCH_SUBJECT,
    IDLE_TIMEOUT_SECONDS,
    KEEP_ALIVE_SECONDS,
    KEEP_ALIVE_TIMEOUT_SECONDS,
    ControlLease,
    Duty,
    decode_epoch,
)
from voltline.services.runtime import Runtime
from voltline.store.engine import Database
from voltline.store.leases import CONTROL_LOCK_KEY

TAKEOVER_SECONDS = 10.0  # DESIGN "Cluster" (the bound for a takeover)


class RecordedDuty:
    """A duty that notes its term's epoch when started and when stopped."""

    def __init__(self, log: list[tuple[str, int | None]], commands: Commands) -> None:
        self.log = log
        self.commands = commands

    async def start(self) -> None:
        self.log.append(("start", self.commands.epoch))

    async def stop(self) -> None:
        self.log.append(("stop", self.commands.epoch))


def make_runtime(url: str, tmp_path: Path, bus: MemoryBus) -> Runtime:
    """A runtime on the database and bus given (no server around it)."""
    settings = server_settings(url, str(tmp_path))
    return Runtime(settings=settings, db=Database(url), secret_key="test-secret", bus=bus)


def recorder(log: list[tuple[str, int | None]]) -> Callable[[Commands], Sequence[Duty]]:
    """A duty factory: one RecordedDuty per term."""
    return lambda commands: [RecordedDuty(log, commands)]


async def until(condition: Callable[[], bool], seconds: float = TAKEOVER_SECONDS) -> float:
    """Poll until `condition()` holds; how long that took (AssertionError after `seconds`)."""
    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > seconds:
            raise AssertionError(f"not within {seconds} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - began


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_epoch_rises_at_every_new_holder_and_the_duties_run_only_while_held(
    backend: str, fresh_database: Callable[[str], str], tmp_path: Path
) -> None:
    """DESIGN "Cluster": each term's commands carry its epoch, strictly higher than the term before."""
    url = fresh_database(backend)

    async def scenario() -> None:
        log: list[tuple[str, int | None]] = []
        announced: list[int | None] = []
        for _ in range(2):
            bus = MemoryBus()

            async def heard(_subject: str, data: bytes) -> None:
                announced.append(decode_epoch(data))

            await bus.listen(EPOCH_SUBJECT, heard)
            runtime = make_runtime(url, tmp_path, bus)
            lease = ControlLease(runtime, recorder(log))
            await lease.start()
            assert lease.holding
            await lease.stop()
            assert not lease.holding
            await runtime.db.close()
        assert log == [("start", 1), ("stop", 1), ("start", 2), ("stop", 2)]
        assert announced[0] == 1 and announced[-1] == 2, "the holder announces its epoch on the bus"

    asyncio.run(scenario())


needs_postgres = pytest.mark.skipif("postgres" not in BACKENDS, reason="needs VOLTLINE_TEST_POSTGRES_URL")


@needs_postgres
def test_only_one_process_holds_the_lease_and_another_takes_over_when_its_session_ends(
    fresh_database: Callable[[str], str], tmp_path: Path
) -> None:
    """DESIGN "Cluster": a holder whose lock session ends (dead or stalled) steps down; the other takes over."""
    url = fresh_database("postgres")

    async def scenario() -> None:
        log_a: list[tuple[str, int | None]] = []
        log_b: list[tuple[str, int | None]] = []
        a = ControlLease(make_runtime(url, tmp_path, MemoryBus()), recorder(log_a))
        b = ControlLease(make_runtime(url, tmp_path, MemoryBus()), recorder(log_b))
        await a.start()
        await b.start()
        try:
            assert a.holding and a.epoch == 1
            await asyncio.sleep(1.5)  # b tries again meanwhile
            assert not b.holding and log_b == [], "the lock has one holder"
            await terminate_lock_holder(a.runtime)
            took = await until(lambda: b.holding)
            assert b.epoch == 2
            await until(lambda: not a.holding)
            assert log_a == [("start", 1), ("stop", 1)], "the old holder stopped its duties"
            assert log_b == [("start", 2)]
            print(f"takeover after the holder's session ended: {took:.1f} s")
        finally:
            for lease in (a, b):
                await lease.stop()
                await lease.runtime.db.close()

    asyncio.run(scenario())


@needs_postgres
def test_a_holder_cut_off_from_postgresql_steps_down_before_postgresql_can_free_the_lock(
    fresh_database: Callable[[str], str], tmp_path: Path
) -> None:
    """DESIGN "Cluster": the network to PostgreSQL stops carrying packets (no reset, nothing closes).

    The keep-alive gets no answer; the holder steps down within KEEP_ALIVE + KEEP_ALIVE_TIMEOUT
    seconds, before PostgreSQL's idle_session_timeout can end its session and free the lock for
    another process. (A cancelled asyncpg query on such a link takes another 2 s to give up:
    waiting for it would step down after the lock may have passed on.) Once the network carries
    again, the same process takes the lease back at a higher epoch.
    """
    url = make_url(fresh_database("postgres"))
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.restore()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)

    async def scenario() -> None:
        log: list[tuple[str, int | None]] = []
        lease = ControlLease(make_runtime(proxied, tmp_path, MemoryBus()), recorder(log))
        await lease.start()
        try:
            assert lease.holding and lease.epoch == 1
            await asyncio.sleep(KEEP_ALIVE_SECONDS * 1.5)  # a keep-alive or two went through
            proxy.freeze()
            took = await until(lambda: not lease.holding)
            assert took < KEEP_ALIVE_SECONDS + KEEP_ALIVE_TIMEOUT_SECONDS + 0.5 < IDLE_TIMEOUT_SECONDS, took
            assert log == [("start", 1), ("stop", 1)], "the duties stopped with the term"
            proxy.thaw()
            await until(lambda: lease.holding)
            assert lease.epoch == 2 and log[-1] == ("start", 2)
            print(f"stepped down {took:.1f} s after the network to PostgreSQL froze")
        finally:
            proxy.thaw()
            await lease.stop()
            await lease.runtime.db.close()

    try:
        asyncio.run(scenario())
    finally:
        proxy.close()


async def terminate_lock_holder(runtime: Runtime) -> None:
    """End the session that holds the control lease's advisory lock (what idle_session_timeout does)."""
    query = text(
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND ((classid::bigint << 32) | objid::bigint) = :key"
    )
    async with runtime.db.write() as conn:
        ended = (await conn.execute(query, {"key": CONTROL_LOCK_KEY & 0xFFFFFFFFFFFFFFFF})).scalars().all()
    assert ended == [True], f"one session held the lock: {ended}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_fenced_command_makes_the_holder_step_down(
    backend: str, fresh_database: Callable[[str], str], tmp_path: Path
) -> None:
    """DESIGN "Cluster": a gateway that has seen a higher epoch refuses the command; the holder steps down."""
    url = fresh_database(backend)

    async def scenario() -> None:
        bus = MemoryBus()

        async def gateway(_data: bytes) -> bytes:
            return encode_reply("fenced", epoch=99)

        await bus.respond(command_subject("CP-FENCED"), gateway)
        log: list[tuple[str, int | None]] = []
        terms: list[Commands] = []

        def duties(commands: Commands) -> Sequence[Duty]:
            terms.append(commands)
            return [RecordedDuty(log, commands)]

        runtime = make_runtime(url, tmp_path, bus)
        lease = ControlLease(runtime, duties)
        await lease.start()
        try:
            with pytest.raises(Exception, match="refused"):
                await terms[0].send("CP-FENCED", "reset", {"type": "Soft"})
            if backend == "sqlite":
                assert terms[0].fenced_by == 99  # one box: nobody else can hold it; the term sends no more
            else:
                await until(lambda: log[-1:] == [("stop", 1)])
            with pytest.raises(Exception, match="refused"):
                await terms[0].send("CP-FENCED", "reset", {"type": "Soft"})
        finally:
            await lease.stop()
            await runtime.db.close()

    asyncio.run(scenario())
